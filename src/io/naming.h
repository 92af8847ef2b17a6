#pragma once
// Weight naming of the three ecosystems, detected from the tensor names, mapped onto
// vitqk's layout (timm naming), and the model config inferred from the shapes. Pure
// functions of names, shapes and metadata: no file access, so hostile inputs are cheap to
// reject (and to fuzz).
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "model/config.h"

namespace vitqk::io {

enum class Naming { Timm, HuggingFace, Torchvision };
std::string naming_name(Naming n);

struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
};

// Source tensor `source` fills rows [row_offset, row_offset + rows) of vitqk parameter `target`
// (Hugging Face's separate query/key/value fill thirds of timm's fused qkv).
struct Placement {
  std::string source, target;
  int64_t row_offset;
};

struct LoadOptions {
  int heads = 0;    // 0: from metadata, else inferred (see infer_model); must agree with either
  float eps = 0;    // 0: from metadata, else the ecosystem's default
  // For unmerge, which refuses a model without merged layers: their head count is not needed
  // (and asking for --heads, which unmerge does not take, would mislead).
  bool factorized_is_an_error = false;
};

struct Inferred {
  Naming naming;
  ViTConfig config;
  std::vector<Placement> placements;  // one per source tensor that is loaded
  std::vector<std::string> notes;     // assumptions worth telling the user (one line each)
};

// `what` names the file in errors. The config comes from metadata key "vitqk" when present
// (vitqk's own files), else from the shapes; flags override both. Every parameter of the
// resulting layout must be covered exactly once with the right shape; unknown or missing
// tensors are errors naming the tensor.
Inferred infer_model(const std::vector<TensorSpec>& tensors, const std::map<std::string, std::string>& metadata,
                     const LoadOptions& opts, const std::string& what);

}  // namespace vitqk::io
