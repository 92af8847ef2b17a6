#pragma once
// Helpers shared by the tests: fixture paths, random models with non-zero biases.
#include <cmath>
#include <fstream>
#include <iterator>
#include <string>

#include "core/rng.h"
#include "model/vit.h"

namespace vitqk::testing {

inline std::string fixture(const std::string& rel) { return std::string(VITQK_FIXTURES) + "/" + rel; }

// The whole file as bytes ("" if it cannot be read).
inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Every parameter random and non-zero, scaled so activations stay of order one and
// attention is far from uniform: the cases where a wrong bias fold or layout shows.
inline void randomize(ViT& m, uint64_t seed) {
  Rng rng(seed);
  for (const auto& p : m.layout.params()) {
    float* v = m.p(p.offset);
    const bool norm = p.name.find("norm") != std::string::npos;
    const bool bias = p.shape.size() == 1;
    const double fan_in = p.shape.size() >= 2 ? double(p.numel) / double(p.shape[0]) : 1.0;
    for (size_t i = 0; i < p.numel; ++i) {
      const float z = rng.normal();
      if (norm && p.name.find("weight") != std::string::npos) v[i] = 1.0f + 0.2f * z;
      else if (bias) v[i] = 0.3f * z;
      else if (p.name == "cls_token" || p.name == "pos_embed") v[i] = 0.5f * z;
      else v[i] = float(1.2 * z / std::sqrt(fan_in));
    }
  }
}

inline ViTConfig tiny_config(int heads = 4, int dim = 32, int image = 16, int patch = 4) {
  ViTConfig c;
  c.image_size = image, c.patch_size = patch, c.in_chans = 3, c.dim = dim, c.depth = 2, c.heads = heads;
  c.mlp_dim = 2 * dim, c.num_classes = 7;
  c.qk.assign(c.depth, Form::Factorized);
  c.ov.assign(c.depth, Form::Factorized);
  return c;
}

}  // namespace vitqk::testing
