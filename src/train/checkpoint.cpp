#include "train/checkpoint.h"

#include <zlib.h>

#include "core/error.h"
#include "io/safetensors.h"

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

nlohmann::json parse_meta(const io::SafeTensorsReader& r, const char* key) {
  auto it = r.metadata().find(key);
  if (it == r.metadata().end()) fail(r.path(), ": not a vitqk training checkpoint (no '", key, "' metadata)");
  nlohmann::json j = nlohmann::json::parse(it->second, nullptr, false);
  if (j.is_discarded()) fail(r.path(), ": corrupt checkpoint metadata '", key, "'");
  return j;
}

}  // namespace

nlohmann::json state_to_json(const TrainState& s) {
  return {{"step", s.step},         {"epoch", s.epoch},     {"position", s.position}, {"loss_sum", s.loss_sum},
          {"correct", s.correct},   {"seen", s.seen},       {"history", s.history},   {"recipe", s.recipe}};
}

TrainState state_from_json(const nlohmann::json& j) {
  TrainState s;
  s.step = j.at("step").get<long>();
  s.epoch = j.at("epoch").get<int>();
  s.position = j.at("position").get<long>();
  s.loss_sum = j.at("loss_sum").get<double>();
  s.correct = j.at("correct").get<long>();
  s.seen = j.at("seen").get<long>();
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

ViTConfig checkpoint_config(const std::string& path) {
  const io::SafeTensorsReader r(path);
  return config_from_json(parse_meta(r, "vitqk"), path);
}

void load_checkpoint(const std::string& path, ViT& m, std::vector<float>& adam_m, std::vector<float>& adam_v,
                     TrainState& s) {
  const io::SafeTensorsReader r(path);
  const nlohmann::json st = parse_meta(r, "vitqk.train");
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
    s = state_from_json(st);
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": corrupt checkpoint state (", e.what(), ")");
  }
}

}  // namespace vitqk
