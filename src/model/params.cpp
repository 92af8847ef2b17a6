#include "model/params.h"

namespace vitqk {

AttentionDims attention_dims(const ViTConfig& c, int layer, int batch) {
  return AttentionDims{batch, c.tokens(), c.dim, c.heads, c.qk[layer], c.ov[layer], c.tokens()};
}

size_t ParamLayout::add(std::string name, std::vector<int64_t> shape) {
  size_t numel = 1;
  for (int64_t s : shape) numel *= size_t(s);
  const bool decay = shape.size() >= 2 && name != "cls_token" && name != "pos_embed";
  index_.emplace(name, params_.size());
  params_.push_back({std::move(name), std::move(shape), size_, numel, decay});
  size_ += numel;
  return params_.back().offset;
}

ParamLayout::ParamLayout(const ViTConfig& c) {
  const int64_t D = c.dim, H = c.heads, M = c.mlp_dim;
  cls = add("cls_token", {1, 1, D});
  pos = add("pos_embed", {1, c.tokens(), D});
  patch_w = add("patch_embed.proj.weight", {D, c.in_chans, c.patch_size, c.patch_size});
  patch_b = add("patch_embed.proj.bias", {D});
  for (int l = 0; l < c.depth; ++l) {
    const std::string p = "blocks." + std::to_string(l) + ".";
    BlockOffsets o{};
    o.ln1_w = add(p + "norm1.weight", {D});
    o.ln1_b = add(p + "norm1.bias", {D});
    const bool mqk = c.qk[l] == Form::Merged, mov = c.ov[l] == Form::Merged;
    if (!mqk && !mov) {
      o.w_in = add(p + "attn.qkv.weight", {3 * D, D});
      o.b_in = add(p + "attn.qkv.bias", {3 * D});
    } else {
      // Weights of the input projection first, then their biases, each group contiguous.
      std::vector<std::pair<std::string, int64_t>> pieces;
      if (mqk) pieces.push_back({"attn.qk", H * D});
      else pieces = {{"attn.q", D}, {"attn.k", D}};
      if (!mov) pieces.push_back({"attn.v", D});
      o.w_in = size_;
      for (auto& [name, rows] : pieces) add(p + name + ".weight", {rows, D});
      o.b_in = size_;
      for (auto& [name, rows] : pieces) add(p + name + ".bias", {rows});
    }
    if (mov) {
      o.w_out = add(p + "attn.ov.weight", {D, H * D});
      o.b_out = add(p + "attn.ov.bias", {D});
    } else {
      o.w_out = add(p + "attn.proj.weight", {D, D});
      o.b_out = add(p + "attn.proj.bias", {D});
    }
    o.ln2_w = add(p + "norm2.weight", {D});
    o.ln2_b = add(p + "norm2.bias", {D});
    o.fc1_w = add(p + "mlp.fc1.weight", {M, D});
    o.fc1_b = add(p + "mlp.fc1.bias", {M});
    o.fc2_w = add(p + "mlp.fc2.weight", {D, M});
    o.fc2_b = add(p + "mlp.fc2.bias", {D});
    blocks.push_back(o);
  }
  norm_w = add("norm.weight", {D});
  norm_b = add("norm.bias", {D});
  if (c.num_classes > 0) {
    head_w = add("head.weight", {c.num_classes, D});
    head_b = add("head.bias", {c.num_classes});
  }
}

const ParamInfo* ParamLayout::find(std::string_view name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &params_[it->second];
}

}  // namespace vitqk
