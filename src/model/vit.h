#pragma once
// The pre-norm Vision Transformer (Dosovitskiy et al. 2021; timm's VisionTransformer with a
// class token):
//   x = [cls; patch_embed(img)] + pos_embed
//   per block: x += attn(norm1(x));  x += mlp(norm2(x))       (either attention form)
//   logits = head(norm(x)[:, 0])
#include <functional>
#include <vector>

#include "core/gemm.h"
#include "model/config.h"
#include "model/params.h"
#include "ops/linear.h"

namespace vitqk {

struct ViT {
  ViTConfig cfg;
  ParamLayout layout;
  std::vector<float> params;

  explicit ViT(ViTConfig c);  // zero parameters; validates the config
  float* p(size_t offset) { return params.data() + offset; }
  const float* p(size_t offset) const { return params.data() + offset; }
};

// The forward pass's view of a model's parameters, whatever their storage.
struct StemWeights {
  LinearWeights patch, head;  // head.N == 0 without a classifier
  const float *cls, *pos, *norm_w, *norm_b;
};
struct BlockWeights {
  const float *ln1_w, *ln1_b, *ln2_w, *ln2_b;
  LinearWeights in, out, fc1, fc2;
  // The last block's input projection as two blocks of rows, queries | keys and values, in
  // place of `in` (empty there): only the class tokens query in that block.
  LinearWeights in_q, in_kv;
};
StemWeights stem_weights(const ViT& m);
BlockWeights block_weights(const ViT& m, int layer);

// A model for inference: every linear layer's matrix packed once for the GEMM kernels, in
// fp32 or bf16; the vectors (norms, biases, class token, position embedding) stay fp32. The
// plain parameters are not kept, so a model is in memory once.
class PackedViT {
 public:
  // Writes one parameter's p.numel floats to dst. Called once per parameter, in layout order.
  using Source = std::function<void(const ParamInfo& p, float* dst)>;
  // Reads the parameters one at a time (a file need never be in memory as a whole).
  PackedViT(ViTConfig c, Precision precision, const Source& read);
  PackedViT(const ViT& m, Precision precision);
  // Views point into the object's own buffers: moving keeps them valid, copying would not.
  PackedViT(PackedViT&&) = default;
  PackedViT(const PackedViT&) = delete;
  PackedViT& operator=(const PackedViT&) = delete;

  ViTConfig cfg;
  ParamLayout layout;
  Precision precision;
  size_t bytes() const;  // parameter memory

  StemWeights stem;
  std::vector<BlockWeights> blocks;

 private:
  std::vector<float> vectors_;
  std::vector<PackedWeights> matrices_;
};

// Buffers of one forward pass, allocated once per batch size and reused: no heap traffic in
// the hot path. With `keep_all` (training) every layer keeps its own activations for the
// backward pass; otherwise all layers share one set. Shapes are per layer with Bn = B * n
// rows; the last block computes only the class tokens' queries and outputs, so from its
// attention on it uses the first B rows (one per image) of each view, and its P is
// [B, q_cols] queries then [Bn, R - q_cols] keys and values (ops/attention.h).
struct Activations {
  struct Layer {
    float *ln1, *ln1_mean, *ln1_rstd;  // norm1(x)            [Bn, D], [Bn], [Bn]
    float *in_proj;                    // x W_in^T + b_in     [Bn, R]
    float *att;                        // softmax scores      [B, H, n, n]
    float *heads;                      // head outputs        [Bn, out_cols]
    float *res_mid;                    // x + attn            [Bn, D]
    float *ln2, *ln2_mean, *ln2_rstd;  // norm2(res_mid)
    float *fc1, *gelu;                 // mlp hidden          [Bn, M] (same buffer at inference)
    float *res_out;                    // res_mid + mlp       [Bn, D]
  };
  int batch = 0;
  bool keep_all = false;
  float *cols, *patch_out, *x0;         // im2col, patch GEMM output, embedded tokens [Bn, D]
  std::vector<Layer> layers;            // one per model layer (views may alias when !keep_all)
  float *cls_ln1;                       // norm1 of the last block's class tokens [B, D]
  float *cls_norm, *cls_mean, *cls_rstd;  // final norm of the class tokens [B, D]
  float *logits;                        // [B, out_dim]

  void ensure(const ViTConfig& c, int batch, bool keep_all);
  const float* layer_input(int l) const { return l == 0 ? x0 : layers[l - 1].res_out; }

 private:
  std::vector<float> buf_;
  const ViTConfig* shaped_for_ = nullptr;
};

// Gradient scratch of one backward pass, allocated once per batch size.
struct BackwardBuffers {
  float *dres, *dln, *dP, *dheads, *dhidden, *dpatch, *dcls, *dP_cls, *scratch;
  void ensure(const ViTConfig& c, int batch);

 private:
  std::vector<float> buf_;
  int batch_ = -1, threads_ = 0;
  const ViTConfig* shaped_for_ = nullptr;
};

// pixels: [B, C, image, image] preprocessed. Result in a.logits.
void vit_forward(const ViT& m, const float* pixels, int B, Activations& a);
void vit_forward(const PackedViT& m, const float* pixels, int B, Activations& a);

// Adds the gradient of the loss into `grads` (laid out like m.params) given dL/dlogits and
// the activations of a forward pass run with keep_all. Deterministic for a thread count.
void vit_backward(const ViT& m, const float* dlogits, const Activations& a, float* grads, BackwardBuffers& w);

}  // namespace vitqk
