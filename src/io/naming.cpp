#include "io/naming.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string_view>

#include "core/error.h"
#include "model/params.h"

namespace vitqk::io {

std::string naming_name(Naming n) {
  switch (n) {
    case Naming::Timm: return "timm";
    case Naming::HuggingFace: return "huggingface";
    case Naming::Torchvision: return "torchvision";
  }
  return "?";
}

namespace {

constexpr int kMaxDepth = 1024;

bool take(std::string_view& s, std::string_view prefix) {
  if (s.substr(0, prefix.size()) != prefix) return false;
  s.remove_prefix(prefix.size());
  return true;
}

// "N." at the front of s, N a layer index without leading zeros.
std::optional<int> take_index(std::string_view& s) {
  size_t i = 0;
  while (i < s.size() && i < 5 && s[i] >= '0' && s[i] <= '9') ++i;
  if (i == 0 || i >= s.size() || s[i] != '.' || (i > 1 && s[0] == '0')) return std::nullopt;
  const int idx = std::stoi(std::string(s.substr(0, i)));
  if (idx >= kMaxDepth) return std::nullopt;
  s.remove_prefix(i + 1);
  return idx;
}

// A source name's place in vitqk's layout: the target name and, for Hugging Face's split
// query/key/value, which third of the fused qkv it fills (0, 1, 2; -1: the whole tensor).
struct Target {
  std::string name;
  int third = -1;
};

std::string weight_or_bias(std::string_view s) { return s == "weight" || s == "bias" ? std::string(s) : ""; }

std::optional<Target> map_timm(std::string_view s) {
  static const std::set<std::string_view> top = {"cls_token", "pos_embed", "patch_embed.proj.weight",
                                                 "patch_embed.proj.bias", "norm.weight", "norm.bias",
                                                 "head.weight", "head.bias"};
  if (top.count(s)) return Target{std::string(s)};
  std::string_view rest = s;
  if (!take(rest, "blocks.")) return std::nullopt;
  auto idx = take_index(rest);
  if (!idx) return std::nullopt;
  for (std::string_view mod : {"norm1.", "norm2.", "attn.qkv.", "attn.qk.", "attn.q.", "attn.k.", "attn.v.",
                               "attn.proj.", "attn.ov.", "mlp.fc1.", "mlp.fc2."}) {
    std::string_view r = rest;
    if (take(r, mod) && !weight_or_bias(r).empty()) return Target{std::string(s)};
  }
  return std::nullopt;
}

std::optional<Target> map_hf(std::string_view s) {
  take(s, "vit.");
  auto wb = [](std::string_view& r, std::string_view mod) { return take(r, mod) && !weight_or_bias(r).empty(); };
  std::string_view r = s;
  if (s == "embeddings.cls_token") return Target{"cls_token"};
  if (s == "embeddings.position_embeddings") return Target{"pos_embed"};
  if (wb(r = s, "embeddings.patch_embeddings.projection.")) return Target{"patch_embed.proj." + std::string(r)};
  if (wb(r = s, "layernorm.")) return Target{"norm." + std::string(r)};
  if (wb(r = s, "classifier.")) return Target{"head." + std::string(r)};
  r = s;
  if (!take(r, "encoder.layer.")) return std::nullopt;
  auto idx = take_index(r);
  if (!idx) return std::nullopt;
  const std::string p = "blocks." + std::to_string(*idx) + ".";
  static const std::pair<std::string_view, std::string_view> mods[] = {
      {"layernorm_before.", "norm1."},          {"layernorm_after.", "norm2."},
      {"attention.output.dense.", "attn.proj."}, {"intermediate.dense.", "mlp.fc1."},
      {"output.dense.", "mlp.fc2."}};
  for (auto [from, to] : mods) {
    std::string_view t = r;
    if (wb(t, from)) return Target{p + std::string(to) + std::string(t)};
  }
  static const std::string_view qkv[] = {"attention.attention.query.", "attention.attention.key.",
                                         "attention.attention.value."};
  for (int third = 0; third < 3; ++third) {
    std::string_view t = r;
    if (wb(t, qkv[third])) return Target{p + "attn.qkv." + std::string(t), third};
  }
  return std::nullopt;
}

std::optional<Target> map_torchvision(std::string_view s) {
  auto wb = [](std::string_view& r, std::string_view mod) { return take(r, mod) && !weight_or_bias(r).empty(); };
  std::string_view r = s;
  if (s == "class_token") return Target{"cls_token"};
  if (s == "encoder.pos_embedding") return Target{"pos_embed"};
  if (wb(r = s, "conv_proj.")) return Target{"patch_embed.proj." + std::string(r)};
  if (wb(r = s, "encoder.ln.")) return Target{"norm." + std::string(r)};
  if (wb(r = s, "heads.head.")) return Target{"head." + std::string(r)};
  r = s;
  if (!take(r, "encoder.layers.encoder_layer_")) return std::nullopt;
  auto idx = take_index(r);
  if (!idx) return std::nullopt;
  const std::string p = "blocks." + std::to_string(*idx) + ".";
  if (r == "self_attention.in_proj_weight") return Target{p + "attn.qkv.weight"};
  if (r == "self_attention.in_proj_bias") return Target{p + "attn.qkv.bias"};
  static const std::pair<std::string_view, std::string_view> mods[] = {
      {"ln_1.", "norm1."},    {"ln_2.", "norm2."},    {"self_attention.out_proj.", "attn.proj."},
      {"mlp.0.", "mlp.fc1."}, {"mlp.3.", "mlp.fc2."}, {"mlp.linear_1.", "mlp.fc1."},
      {"mlp.linear_2.", "mlp.fc2."}};
  for (auto [from, to] : mods) {
    std::string_view t = r;
    if (wb(t, from)) return Target{p + std::string(to) + std::string(t)};
  }
  return std::nullopt;
}

Naming detect(const std::vector<TensorSpec>& tensors) {
  for (const auto& t : tensors) {
    std::string_view s = t.name;
    // "encoder.layer." is HF's; torchvision's is "encoder.layers.".
    if (take(s, "vit.") || s.substr(0, 11) == "embeddings." || s.substr(0, 14) == "encoder.layer.")
      return Naming::HuggingFace;
    if (t.name == "class_token" || t.name.substr(0, 15) == "encoder.layers." || t.name.substr(0, 10) == "conv_proj.")
      return Naming::Torchvision;
  }
  return Naming::Timm;
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

// Preprocessing each ecosystem's ViTs are trained with, for an image of side `image`.
Preprocess default_preprocess(Naming n, int image) {
  Preprocess p;
  p.crop = image;
  switch (n) {
    case Naming::Timm:  // crop_pct 0.9, bicubic, mean = std = 0.5
      p.resize = int(std::floor(image / 0.9)), p.interp = Interp::Bicubic;
      p.mean = {0.5f, 0.5f, 0.5f}, p.std = {0.5f, 0.5f, 0.5f};
      break;
    case Naming::Torchvision:  // Resize(256) + CenterCrop(224), ImageNet statistics
      p.resize = int(std::floor(image / 0.875)), p.interp = Interp::Bilinear;
      break;
    case Naming::HuggingFace:  // ViTImageProcessor: resize to exactly image x image
      p.resize = image, p.resize_exact = true, p.crop = 0, p.interp = Interp::Bilinear;
      p.mean = {0.5f, 0.5f, 0.5f}, p.std = {0.5f, 0.5f, 0.5f};
      break;
  }
  return p;
}

}  // namespace

Inferred infer_model(const std::vector<TensorSpec>& tensors, const std::map<std::string, std::string>& metadata,
                     const LoadOptions& opts, const std::string& what) {
  Inferred out;
  out.naming = detect(tensors);
  auto mapper = out.naming == Naming::HuggingFace ? map_hf
                : out.naming == Naming::Torchvision ? map_torchvision
                                                    : map_timm;

  // Map every source tensor; remember the shapes of the targets it fills.
  struct Source {
    const TensorSpec* spec;
    Target target;
  };
  std::vector<Source> sources;
  std::map<std::string, const TensorSpec*> by_target;  // whole-tensor targets, for shape inference
  for (const auto& t : tensors) {
    if (out.naming == Naming::HuggingFace) {
      std::string_view s = t.name;
      take(s, "vit.");
      if (take(s, "pooler.")) {
        out.notes.push_back("ignoring Hugging Face pooler tensor '" + t.name + "' (not used for classification)");
        continue;
      }
    }
    auto target = mapper(t.name);
    if (!target)
      fail(what, ": unknown tensor '", t.name, "' for ", naming_name(out.naming),
           " naming (not part of a supported ViT)");
    if (target->third < 0) by_target[target->name] = &t;
    sources.push_back({&t, *target});
  }

  auto shape_of = [&](const std::string& name) -> const std::vector<int64_t>* {
    auto it = by_target.find(name);
    return it == by_target.end() ? nullptr : &it->second->shape;
  };
  auto require = [&](const std::string& name, size_t rank) -> const std::vector<int64_t>& {
    const auto* s = shape_of(name);
    if (!s) fail(what, ": missing tensor '", name, "' (", naming_name(out.naming), " naming)");
    if (s->size() != rank) fail(what, ": tensor '", name, "' has shape ", shape_str(*s), ", expected rank ", rank);
    return *s;
  };

  ViTConfig& c = out.config;
  auto meta = metadata.find("vitqk");
  int recorded_heads = 0;  // from vitqk's metadata, or from the shape of a merged layer
  if (meta != metadata.end()) {
    c = config_from_text(meta->second, what);
    recorded_heads = c.heads;
  } else {
    const auto& pw = require("patch_embed.proj.weight", 4);
    if (pw[2] != pw[3]) fail(what, ": non-square patches ", shape_str(pw), " are not supported");
    const auto& pos = require("pos_embed", 3);
    c.dim = int(std::clamp<int64_t>(pw[0], 0, 1 << 20));
    c.in_chans = int(std::clamp<int64_t>(pw[1], 0, 1 << 20));
    c.patch_size = int(std::clamp<int64_t>(pw[2], 0, 1 << 20));
    const int64_t patches = pos[1] - 1;
    // Bounded before squaring: a hostile pos_embed length must not overflow g * g.
    const int64_t g = patches > 0 && patches <= (int64_t(1) << 40) ? int64_t(std::llround(std::sqrt(double(patches)))) : 0;
    if (g == 0 || g * g != patches)
      fail(what, ": pos_embed ", shape_str(pos), " does not describe a square grid of patches plus a class token");
    if (g * c.patch_size > 65536) fail(what, ": pos_embed ", shape_str(pos), " implies an image size out of range");
    c.image_size = int(g * c.patch_size);
    int depth = 0;
    for (auto& s : sources) {
      std::string_view n = s.target.name;
      if (take(n, "blocks.")) depth = std::max(depth, *take_index(n) + 1);
    }
    c.depth = depth;
    if (depth == 0) fail(what, ": no transformer blocks found");
    c.qk.assign(depth, Form::Factorized);
    c.ov.assign(depth, Form::Factorized);
    int merged_heads = 0;
    for (int l = 0; l < depth; ++l) {
      const std::string p = "blocks." + std::to_string(l) + ".";
      if (const auto* s = shape_of(p + "attn.qk.weight")) {
        c.qk[l] = Form::Merged;
        if (s->size() == 2 && c.dim > 0 && (*s)[0] % c.dim == 0) merged_heads = int(std::min<int64_t>((*s)[0] / c.dim, 1 << 20));
      }
      if (const auto* s = shape_of(p + "attn.ov.weight")) {
        c.ov[l] = Form::Merged;
        if (s->size() == 2 && c.dim > 0 && (*s)[1] % c.dim == 0) merged_heads = int(std::min<int64_t>((*s)[1] / c.dim, 1 << 20));
      }
    }
    c.mlp_dim = int(std::clamp<int64_t>(require("blocks.0.mlp.fc1.weight", 2)[0], 0, 1 << 20));
    if (shape_of("head.weight")) c.num_classes = int(std::clamp<int64_t>(require("head.weight", 2)[0], 0, 1 << 24));
    else c.num_classes = 0;
    c.eps = out.naming == Naming::HuggingFace ? 1e-12f : 1e-6f;
    recorded_heads = merged_heads;
    if (merged_heads) c.heads = merged_heads;
    else if (!opts.heads && opts.factorized_is_an_error) {
      c.heads = 1;  // the caller refuses a model with no merged layer: any valid count will do
    } else if (!opts.heads) {
      if (c.dim % 64 != 0)
        fail(what, ": the weights do not say how many attention heads there are; pass --heads");
      c.heads = c.dim / 64;
      out.notes.push_back("assuming " + std::to_string(c.heads) + " heads (head width 64); pass --heads to change");
    }
    c.preprocess = default_preprocess(out.naming, c.image_size);
  }
  if (opts.heads && recorded_heads && opts.heads != recorded_heads)
    fail(what, ": the file records ", recorded_heads, " attention heads; --heads ", opts.heads,
         " contradicts it (leave --heads out)");
  if (opts.heads) c.heads = opts.heads;
  if (opts.eps > 0) c.eps = opts.eps;
  c.validate(what);

  // Every parameter of the layout must be covered exactly, with the right shapes.
  const ParamLayout layout(c);
  std::map<std::string, std::vector<int>> covered;  // target -> thirds seen (-1 whole)
  for (auto& s : sources) {
    const ParamInfo* p = layout.find(s.target.name);
    if (!p)
      fail(what, ": tensor '", s.spec->name, "' does not belong to this model (",
           c.depth, " layers, forms from the file's names)");
    std::vector<int64_t> want = p->shape;
    if (s.target.third >= 0) want[0] /= 3;
    if (s.spec->shape != want)
      fail(what, ": tensor '", s.spec->name, "' has shape ", shape_str(s.spec->shape), ", expected ",
           shape_str(want));
    auto& seen = covered[s.target.name];
    if (std::find(seen.begin(), seen.end(), s.target.third) != seen.end() || (!seen.empty() && s.target.third < 0))
      fail(what, ": tensor '", s.spec->name, "' appears twice");
    seen.push_back(s.target.third);
    out.placements.push_back({s.spec->name, s.target.name, s.target.third < 0 ? 0 : s.target.third * want[0]});
  }
  for (const auto& p : layout.params()) {
    auto it = covered.find(p.name);
    if (it == covered.end()) fail(what, ": missing tensor '", p.name, "'");
    if (it->second.size() != 1 && it->second.size() != 3) fail(what, ": tensor '", p.name, "' is only partly present (query/key/value)");
    if (it->second.size() == 1 && it->second[0] >= 0) fail(what, ": tensor '", p.name, "' is only partly present (query/key/value)");
  }
  return out;
}

}  // namespace vitqk::io
