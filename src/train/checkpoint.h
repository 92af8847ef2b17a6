#pragma once
// The full training state in one safetensors file, written atomically: weights, AdamW
// moments, the step and position in the epoch, the running sums of the epoch, the epoch
// history, and everything that must match on resume (model config, recipe, data, seed).
// Data order and augmentation are functions of (seed, epoch, position), so no RNG stream
// needs saving. A CRC32 of every tensor guards against corruption.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "model/vit.h"

namespace vitqk {

struct TrainState {
  long step = 0;          // optimizer steps taken
  int epoch = 0;          // current epoch (0-based)
  long position = 0;      // batches of this epoch already consumed
  double loss_sum = 0;    // over this epoch's batches so far
  long correct = 0, seen = 0;
  nlohmann::json history = nlohmann::json::array();  // one record per finished epoch
  nlohmann::json recipe;  // what must match to resume (see trainer)
};

// The state without the tensors, as stored in the checkpoint (and sent to every rank).
nlohmann::json state_to_json(const TrainState& s);
// Throws Error naming `what` for out-of-range or mistyped fields, nlohmann::json::exception
// for missing ones.
TrainState state_from_json(const nlohmann::json& j, const std::string& what);

void save_checkpoint(const std::string& path, const ViT& m, const std::vector<float>& adam_m,
                     const std::vector<float>& adam_v, const TrainState& s);

// Loads into m (which must have the checkpoint's layout), adam_m, adam_v and s. Throws Error
// naming the file for a corrupt checkpoint.
void load_checkpoint(const std::string& path, ViT& m, std::vector<float>& adam_m, std::vector<float>& adam_v,
                     TrainState& s);
void load_checkpoint(const io::SafeTensorsReader& r, ViT& m, std::vector<float>& adam_m, std::vector<float>& adam_v,
                     TrainState& s);

// The model config stored in a checkpoint (to build the ViT before load_checkpoint).
ViTConfig checkpoint_config(const std::string& path);
ViTConfig checkpoint_config(const io::SafeTensorsReader& r);

}  // namespace vitqk
