#pragma once
// Training and evaluation of either attention form on image classification data.
#include <cstdint>
#include <string>
#include <vector>

#include "model/vit.h"
#include "train/adamw.h"
#include "train/data.h"
#include "train/init.h"

namespace vitqk {

struct TrainOptions {
  std::string data = "fashion-mnist";
  int limit_train = 0, limit_test = 0;  // > 0: use only the first N images (quick runs)
  int epochs = 10, batch = 128;
  AdamWConfig opt;
  float warmup_epochs = 0.1f;
  float label_smoothing = 0.0f;
  uint64_t seed = 0;
  Augment augment;
  long save_every = 0;  // also checkpoint every N steps (0: at epoch ends only)
  std::string out = "runs/train";
  bool resume = false;
  MergedInit merged_init = MergedInit::Product;
  bool progress = true;
  // Data already loaded with (data, limit_train, limit_test), shared by many runs (the
  // study); null: train() loads it.
  const DataSplits* preloaded = nullptr;
};

struct EvalResult {
  double loss = 0, accuracy = 0;
  std::vector<std::vector<long>> confusion;  // [true][predicted]
  std::vector<double> per_class;             // accuracy per true class
};

EvalResult evaluate(const ViT& m, const Dataset& d, int batch = 256);

// Trains a model of config `c` (forms per layer as given) and writes DIR/checkpoint.safetensors,
// DIR/model.safetensors and DIR/log.jsonl. Returns the epoch records (as in log.jsonl).
std::vector<nlohmann::json> train(const ViTConfig& c, const TrainOptions& o);

}  // namespace vitqk
