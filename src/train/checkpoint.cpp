#include "train/checkpoint.h"

#include <zlib.h>

#include <climits>

#include "core/error.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "model/params.h"

namespace vitqk {

namespace {

std::string crc_of(const std::vector<float>& v) {
  uLong crc = crc32(0L, Z_NULL, 0);
  const auto* bytes = reinterpret_cast<const Bytef*>(v.data());
  size_t left = v.size() * sizeof(float);
  while (left > 0) {  // crc32 takes a uInt length
    const uInt n = uInt(std::min<size_t>(left, 1u << 30));
    crc = crc32(crc, bytes, n);
    bytes += n, left -= n;
  }
  return std::to_string(crc);
}

const std::string& meta(const io::SafeTensorsReader& r, const char* key) {
  auto it = r.metadata().find(key);
  if (it == r.metadata().end()) fail(r.path(), ": not a vitqk training checkpoint (no '", key, "' metadata)");
  return it->second;
}

}  // namespace

nlohmann::json state_to_json(const TrainState& s) {
  return {{"step", s.step},         {"epoch", s.epoch},     {"position", s.position}, {"loss_sum", s.loss_sum},
          {"correct", s.correct},   {"seen", s.seen},       {"history", s.history},   {"recipe", s.recipe}};
}

TrainState state_from_json(const nlohmann::json& j, const std::string& what) {
  TrainState s;
  // Counts are range-checked before they are converted: get<long>() of 1e300 is undefined.
  auto count = [&](const char* key, long limit) {
    const nlohmann::json& v = j.at(key);
    if (!v.is_number_integer() || (v.is_number_unsigned() ? v.get<uint64_t>() > uint64_t(limit) : v.get<long>() < 0))
      fail(what, ": corrupt checkpoint state ('", key, "' is not an integer from 0 to ", limit, ")");
    return v.get<long>();
  };
  s.step = count("step", LONG_MAX);
  s.epoch = int(count("epoch", INT_MAX));
  s.position = count("position", LONG_MAX);
  s.correct = count("correct", LONG_MAX);
  s.seen = count("seen", LONG_MAX);
  if (!j.at("loss_sum").is_number()) fail(what, ": corrupt checkpoint state ('loss_sum' is not a number)");
  s.loss_sum = j.at("loss_sum").get<double>();
  if (!j.at("history").is_array() || !j.at("recipe").is_object())
    fail(what, ": corrupt checkpoint state (no history array or recipe object)");
  s.history = j.at("history");
  s.recipe = j.at("recipe");
  return s;
}

void save_checkpoint(const std::string& path, const ViT& m, const std::vector<float>& adam_m,
                     const std::vector<float>& adam_v, const TrainState& s) {
  const int64_t n = int64_t(m.params.size());
  nlohmann::json st = state_to_json(s);
  st["crc32"] = {crc_of(m.params), crc_of(adam_m), crc_of(adam_v)};
  io::write_safetensors(path,
                        {{"params", {n}, m.params.data()}, {"adam.m", {n}, adam_m.data()}, {"adam.v", {n}, adam_v.data()}},
                        {{"vitqk", config_to_json(m.cfg).dump()}, {"vitqk.train", st.dump()}});
}

ViTConfig checkpoint_config(const std::string& path) { return checkpoint_config(io::SafeTensorsReader(path)); }

ViTConfig checkpoint_config(const io::SafeTensorsReader& r) {
  const ViTConfig c = config_from_text(meta(r, "vitqk"), r.path());
  // The model built from this config is filled from the file: the file must hold all of it.
  const int64_t n = int64_t(ParamLayout(c).size());
  const auto* e = r.find("params");
  if (!e || e->shape != std::vector<int64_t>{n})
    fail(r.path(), ": checkpoint tensor 'params' missing or not of its config's size ", n);
  return c;
}

void load_checkpoint(const std::string& path, ViT& m, std::vector<float>& adam_m, std::vector<float>& adam_v,
                     TrainState& s) {
  load_checkpoint(io::SafeTensorsReader(path), m, adam_m, adam_v, s);
}

void load_checkpoint(const io::SafeTensorsReader& r, ViT& m, std::vector<float>& adam_m, std::vector<float>& adam_v,
                     TrainState& s) {
  const std::string& path = r.path();
  // The state nests the recipe, which nests the model config: five levels.
  const nlohmann::json st = io::parse_json(meta(r, "vitqk.train"), 8, path + ": checkpoint state");
  const int64_t n = int64_t(m.params.size());
  std::vector<float>* dst[] = {&m.params, &adam_m, &adam_v};
  const char* names[] = {"params", "adam.m", "adam.v"};
  try {
    for (int i = 0; i < 3; ++i) {
      const auto* e = r.find(names[i]);
      if (!e || e->shape != std::vector<int64_t>{n})
        fail(path, ": checkpoint tensor '", names[i], "' missing or not of the model's size ", n);
      dst[i]->resize(size_t(n));
      r.read(*e, dst[i]->data());
      if (crc_of(*dst[i]) != st.at("crc32").at(i).get<std::string>())
        fail(path, ": checkpoint tensor '", names[i], "' is corrupt (checksum mismatch)");
    }
    s = state_from_json(st, path);
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": corrupt checkpoint state (", e.what(), ")");
  }
}

}  // namespace vitqk
