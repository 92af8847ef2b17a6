#pragma once
// All parameters of a model live in one contiguous float buffer (one optimizer loop, one
// file write, one all-reduce); this layout names its views in timm's naming, in timm's
// state_dict order. Gradients and AdamW moments use the same layout over their own buffers.
//
// Attention tensors per layer, by form (D = width, H = heads):
//   qk factorized, ov factorized: attn.qkv [3D, D] (timm's fused q|k|v), attn.proj [D, D]
//   qk merged,     ov factorized: attn.qk  [H*D, D] + attn.v [D, D],  attn.proj [D, D]
//   qk factorized, ov merged:     attn.q   [D, D]  + attn.k [D, D],   attn.ov [D, H*D] (+ bias [D])
//   qk merged,     ov merged:     attn.qk  [H*D, D],                  attn.ov [D, H*D] (+ bias [D])
// The pieces of the input projection are adjacent in memory (weights, then biases), so one
// GEMM computes them all: W_in [R, D] and b_in [R], R = AttentionDims::in_rows().
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "model/config.h"
#include "ops/attention.h"

namespace vitqk {

struct ParamInfo {
  std::string name;
  std::vector<int64_t> shape;
  size_t offset, numel;
  bool decay;  // AdamW weight decay: matrices only, not biases, norms, cls_token, pos_embed
};

struct BlockOffsets {
  size_t ln1_w, ln1_b, w_in, b_in, w_out, b_out, ln2_w, ln2_b, fc1_w, fc1_b, fc2_w, fc2_b;
};

class ParamLayout {
 public:
  explicit ParamLayout(const ViTConfig& c);

  const std::vector<ParamInfo>& params() const { return params_; }
  const ParamInfo* find(std::string_view name) const;
  size_t size() const { return size_; }

  size_t patch_w, patch_b, cls, pos, norm_w, norm_b, head_w = 0, head_b = 0;
  std::vector<BlockOffsets> blocks;

 private:
  size_t add(std::string name, std::vector<int64_t> shape);
  std::vector<ParamInfo> params_;
  std::map<std::string, size_t, std::less<>> index_;  // name -> position in params_: files have 10^4 tensors
  size_t size_ = 0;
};

AttentionDims attention_dims(const ViTConfig& c, int layer, int batch);

}  // namespace vitqk
