#pragma once
// The cost model of the README's "The math in one screen": parameters, multiply-accumulates and activation
// bytes of every part of a ViT, for one image, in whichever attention forms its layers use.
// MACs count matrix products only (GEMMs and the patch convolution); activation bytes are
// the float32 tensors a layer keeps for its backward pass (Activations' buffers, which keep
// every row of the last layer too).
#include <cstdint>
#include <vector>

#include "model/config.h"

namespace vitqk {

struct Cost {
  int64_t params = 0, macs = 0, act_bytes = 0;
  Cost& operator+=(const Cost& o) {
    params += o.params, macs += o.macs, act_bytes += o.act_bytes;
    return *this;
  }
};

struct LayerCost {
  Cost qk, ov, mlp, norms;
  Cost total() const;
};

struct ModelCost {
  Cost embed, head;
  std::vector<LayerCost> layers;
  Cost total() const;
};

// Cost of the query-key and value-output pairs of one layer with n tokens.
Cost qk_cost(int64_t D, int64_t H, int64_t n, Form f);
Cost ov_cost(int64_t D, int64_t H, int64_t n, Form f);

// tokens: 0 keeps the config's own token count (1 + patches).
ModelCost model_cost(const ViTConfig& c, int tokens = 0);
// What vitqk's forward pass computes (inference and training): model_cost, but the last layer computes
// queries, output projection and MLP for the class token only (the one row the head reads).
ModelCost forward_cost(const ViTConfig& c);

// The same model with every layer in the given forms.
ViTConfig with_forms(const ViTConfig& c, Form qk, Form ov);
// Per layer and per pair, whichever form the cost model says is cheaper (fewer MACs, then
// fewer parameters); ties stay factorized.
ViTConfig auto_forms(const ViTConfig& c, int tokens = 0);

}  // namespace vitqk
