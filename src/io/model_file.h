#pragma once
// Model checkpoints: any of the three namings in, vitqk's (timm naming, config in
// `__metadata__["vitqk"]`) out.
#include <string>
#include <vector>

#include "io/naming.h"
#include "io/safetensors.h"
#include "model/vit.h"

namespace vitqk::io {

struct LoadedModel {
  ViT model;
  Naming naming;
  std::vector<std::string> notes;
};

// The model a file holds, from its header alone: no weight is read.
Inferred infer_model(const SafeTensorsReader& r, const LoadOptions& opts = {});

// Validates the whole file (header, names, shapes) before reading any weight.
LoadedModel load_model(const std::string& path, const LoadOptions& opts = {});
LoadedModel load_model(const SafeTensorsReader& r, const LoadOptions& opts = {});

// The same file packed for inference, read one parameter at a time: the plain weights are
// never whole in memory beside the packed ones. Forms as stored.
struct LoadedPacked {
  PackedViT model;
  Naming naming;
  std::vector<std::string> notes;
};
LoadedPacked load_packed(const std::string& path, Precision precision, const LoadOptions& opts = {});

// Written atomically; `extra` metadata is added beside the config.
void save_model(const std::string& path, const ViT& m, const std::map<std::string, std::string>& extra = {},
                DType dtype = DType::F32);

}  // namespace vitqk::io
