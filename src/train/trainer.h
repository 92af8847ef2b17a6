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
  WeightInit weight_init = WeightInit::Jax;
  bool progress = true;
  // Rows (images x tokens) per forward and backward pass inside a slot, at least one image:
  // memory and speed only, the bits are the same whatever it is (see images_per_pass).
  int pass_rows = 256;
  // Data already loaded with (data, limit_train, limit_test), shared by many runs (the
  // study); null: train() loads it.
  const DataSplits* preloaded = nullptr;
};

struct EvalResult {
  double loss = 0, accuracy = 0;
  std::vector<std::vector<long>> confusion;  // [true][predicted]
  std::vector<double> per_class;             // accuracy per true class
};

// Images are run in chunks of `batch`, one chunk per thread.
// `what` names the data in errors (images of another size than the model's, another class count).
EvalResult evaluate(const ViT& m, const Dataset& d, const std::string& what, int batch = 32);

// Where train() keeps the checkpoint of a run writing to `out`.
std::string checkpoint_path(const std::string& out);

// Trains a model of config `c` (forms per layer as given) and writes DIR/checkpoint.safetensors,
// DIR/model.safetensors and DIR/log.jsonl. Returns the epoch records (as in log.jsonl).
//
// A step cuts the global batch into slots of equal size, fixed by the batch and the model
// size: each slot's gradient is computed on one thread, and the slots' gradients are added in
// a fixed tree, so the bits of a run depend on the seed, never on the thread count.
//
// Under mpirun (dist::world() has N > 1 ranks) the run is data-parallel and computes the
// same function: rank 0's weights go to every rank; each rank takes its 1/N share of the
// slots of every global batch of o.batch images (same seeded order and augmentation); the
// gradients are summed in one all-reduce and every rank takes the same AdamW step. Two ranks
// give the bits of one process; more may add the ranks' sums in another order. Rank 0 alone
// prints and writes files; the test set is split over the ranks. A checkpoint resumes only
// under the same N.
std::vector<nlohmann::json> train(const ViTConfig& c, const TrainOptions& o);

// The speed of data-parallel training steps over dist::world() (vitqk bench --train).
struct TrainBench {
  int ranks = 1, threads = 1, batch = 0, steps = 0;
  size_t params = 0;
  double step_s = 0;       // mean wall time of a step, of which:
  double wait_s = 0;       //   waiting for the slowest rank (a barrier before the all-reduce)
  double allreduce_s = 0;  //   the all-reduce of the gradients
  double images_per_s() const { return batch / step_s; }
};

// `steps` optimiser steps (after `warmup` untimed ones) of a model of config c with random
// weights on random images, global batch `batch`.
TrainBench bench_training(const ViTConfig& c, int batch, int steps, int warmup);

}  // namespace vitqk
