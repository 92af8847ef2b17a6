#include "io/model_file.h"

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/safetensors.h"

namespace vitqk::io {

namespace {

// A NaN or infinity in a checkpoint reaches every logit, and through a conversion every head:
// refuse it by name rather than print NaN predictions.
void read_finite(const SafeTensorsReader& r, const std::string& name, float* dst) {
  const auto& e = *r.find(name);
  r.read(e, dst);
  for (int64_t i = 0; i < e.numel; ++i)
    if (!std::isfinite(dst[i]))
      fail(r.path(), ": tensor '", name, "' holds ", std::isnan(dst[i]) ? "NaN" : "an infinity",
           " (element ", i, "): the file is damaged or the model diverged");
}

}  // namespace

Inferred infer_model(const SafeTensorsReader& r, const LoadOptions& opts) {
  std::vector<TensorSpec> specs;
  for (const auto& e : r.entries()) specs.push_back({e.name, e.shape});
  return infer_model(specs, r.metadata(), opts, r.path());
}

LoadedModel load_model(const std::string& path, const LoadOptions& opts) {
  return load_model(SafeTensorsReader(path), opts);
}

LoadedModel load_model(const SafeTensorsReader& reader, const LoadOptions& opts) {
  Inferred inf = infer_model(reader, opts);
  LoadedModel out{ViT(inf.config), inf.naming, std::move(inf.notes)};
  ViT& m = out.model;
  for (const auto& p : inf.placements) {
    const ParamInfo* info = m.layout.find(p.target);
    const size_t cols = info->numel / size_t(info->shape[0]);
    read_finite(reader, p.source, m.p(info->offset + size_t(p.row_offset) * cols));
  }
  return out;
}

LoadedPacked load_packed(const std::string& path, Precision precision, const LoadOptions& opts) {
  const SafeTensorsReader reader(path);
  Inferred inf = infer_model(reader, opts);
  std::multimap<std::string, const Placement*> by_target;
  for (const auto& p : inf.placements) by_target.emplace(p.target, &p);
  PackedViT m(inf.config, precision, [&](const ParamInfo& info, float* dst) {
    const size_t cols = info.numel / size_t(info.shape[0]);
    for (auto [it, end] = by_target.equal_range(info.name); it != end; ++it)
      read_finite(reader, it->second->source, dst + size_t(it->second->row_offset) * cols);
  });
  return {std::move(m), inf.naming, std::move(inf.notes)};
}

void save_model(const std::string& path, const ViT& m, const std::map<std::string, std::string>& extra,
                DType dtype) {
  std::vector<TensorView> views;
  for (const auto& p : m.layout.params()) views.push_back({p.name, p.shape, m.p(p.offset)});
  std::map<std::string, std::string> meta = extra;
  meta["format"] = "pt";
  meta["vitqk"] = config_to_json(m.cfg).dump();
  write_safetensors(path, views, meta, dtype);
}

}  // namespace vitqk::io
