#pragma once
// What a ViT is: sizes, per-layer attention forms, preprocessing and class names.
// Serialised as JSON in the `__metadata__` of vitqk's safetensors files.
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "io/image.h"

namespace vitqk {

// How a layer computes a pair of projections (README, "The math in one screen"):
//   qk: factorized q_h . k_h, or merged x_i^T A_h x_j with A_h = Wq_h^T Wk_h / sqrt(d_h);
//   ov: factorized W_O (concat_h a_h V_h), or merged sum_h a_h X (W_O^h W_V^h)^T.
enum class Form { Factorized, Merged };

struct ViTConfig {
  int image_size = 224, patch_size = 16, in_chans = 3;
  int dim = 768, depth = 12, heads = 12, mlp_dim = 3072;
  int num_classes = 1000;  // 0: no head, the output is the normed class-token feature
  float eps = 1e-6f;
  std::vector<Form> qk, ov;  // one per layer
  io::Preprocess preprocess;
  std::vector<std::string> class_names;  // empty or num_classes names

  int grid() const { return image_size / patch_size; }
  int tokens() const { return 1 + grid() * grid(); }
  int head_dim() const { return dim / heads; }
  int patch_dim() const { return in_chans * patch_size * patch_size; }
  int out_dim() const { return num_classes > 0 ? num_classes : dim; }
  bool any_merged() const;
  // Throws Error naming `what` (a file or preset) when the sizes are inconsistent.
  void validate(const std::string& what) const;
};

// Named sizes: vit-ti16, vit-s16, vit-b16, vit-l16 (224x224, 1000 classes, timm defaults)
// and fmnist (the small 28x28 model vitqk trains by default).
ViTConfig preset(const std::string& name);
std::vector<std::string> preset_names();

std::string form_name(Form f);
Form parse_form(const std::string& s);  // "factorized" | "merged"

nlohmann::json config_to_json(const ViTConfig& c);
ViTConfig config_from_json(const nlohmann::json& j, const std::string& what);
// The same from JSON text (a file's __metadata__["vitqk"], a --model-config file).
ViTConfig config_from_text(const std::string& text, const std::string& what);

}  // namespace vitqk
