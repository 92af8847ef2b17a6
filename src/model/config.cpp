#include "model/config.h"

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/json.h"

namespace vitqk {

bool ViTConfig::any_merged() const {
  for (int l = 0; l < depth; ++l)
    if (qk[l] == Form::Merged || ov[l] == Form::Merged) return true;
  return false;
}

void ViTConfig::validate(const std::string& what) const {
  auto positive = [&](int v, const char* name) {
    if (v <= 0) fail(what, ": ", name, " must be positive, got ", v);
  };
  positive(image_size, "image_size");
  positive(patch_size, "patch_size");
  positive(in_chans, "in_chans");
  positive(dim, "dim");
  positive(depth, "depth");
  positive(heads, "heads");
  positive(mlp_dim, "mlp_dim");
  if (num_classes < 0) fail(what, ": num_classes must not be negative");
  if (image_size % patch_size) fail(what, ": image size ", image_size, " is not a multiple of patch size ", patch_size);
  if (dim % heads) fail(what, ": width ", dim, " is not divisible by ", heads, " heads");
  if (!(eps > 0) || std::isinf(eps)) fail(what, ": LayerNorm eps must be positive and finite");
  if (int(qk.size()) != depth || int(ov.size()) != depth)
    fail(what, ": attention forms given for ", qk.size(), " layers, model has ", depth);
  const io::Preprocess& p = preprocess;
  if (p.resize < 0 || p.resize > 16384 || p.crop < 0 || p.crop > 16384) fail(what, ": preprocess sizes out of range");
  for (int i = 0; i < 3; ++i)
    if (!std::isfinite(p.mean[i]) || !(p.std[i] > 0) || std::isinf(p.std[i]))
      fail(what, ": preprocess mean must be finite and std positive and finite");
  if (!class_names.empty() && int(class_names.size()) != num_classes)
    fail(what, ": ", class_names.size(), " class names for ", num_classes, " classes");
  // Bounds that keep every size product far from int overflow in the kernels. tokens() and
  // patch_dim() would overflow on sizes a file can claim: their bounds are checked in 64 bits,
  // after the factors' (patch_size <= image_size, a multiple of it).
  const int64_t grid = image_size / patch_size;
  if (dim > 16384 || mlp_dim > 65536 || heads > 256 || depth > 1024 || in_chans > 64 || image_size > 65536 ||
      1 + grid * grid > 65536 || int64_t(in_chans) * patch_size * patch_size > (1 << 24) || num_classes > 1000000)
    fail(what, ": model sizes out of the supported range");
}

namespace {
ViTConfig sized(int image, int patch, int chans, int dim, int depth, int heads, int mlp, int classes) {
  ViTConfig c;
  c.image_size = image, c.patch_size = patch, c.in_chans = chans;
  c.dim = dim, c.depth = depth, c.heads = heads, c.mlp_dim = mlp, c.num_classes = classes;
  c.qk.assign(depth, Form::Factorized);
  c.ov.assign(depth, Form::Factorized);
  return c;
}
// timm's default for the original ViTs: bicubic resize to 224 / 0.9, centre crop, mean = std = 0.5.
io::Preprocess timm_preprocess() {
  io::Preprocess p;
  p.resize = 248, p.crop = 224, p.interp = io::Interp::Bicubic;
  p.mean = {0.5f, 0.5f, 0.5f}, p.std = {0.5f, 0.5f, 0.5f};
  return p;
}
}  // namespace

ViTConfig preset(const std::string& name) {
  ViTConfig c;
  if (name == "vit-ti16") c = sized(224, 16, 3, 192, 12, 3, 768, 1000);
  else if (name == "vit-s16") c = sized(224, 16, 3, 384, 12, 6, 1536, 1000);
  else if (name == "vit-b16") c = sized(224, 16, 3, 768, 12, 12, 3072, 1000);
  else if (name == "vit-l16") c = sized(224, 16, 3, 1024, 24, 16, 4096, 1000);
  else if (name == "fmnist") {
    c = sized(28, 4, 1, 64, 6, 4, 128, 10);
    c.preprocess.resize = 28, c.preprocess.crop = 28, c.preprocess.interp = io::Interp::Bilinear;
    c.preprocess.mean = {0.2860f, 0.2860f, 0.2860f}, c.preprocess.std = {0.3530f, 0.3530f, 0.3530f};
    c.class_names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                     "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
    return c;
  } else {
    std::string known;
    for (auto& n : preset_names()) known += (known.empty() ? "" : ", ") + n;
    fail("--preset ", name, ": unknown preset (known: ", known, ")");
  }
  c.preprocess = timm_preprocess();
  return c;
}

std::vector<std::string> preset_names() { return {"vit-ti16", "vit-s16", "vit-b16", "vit-l16", "fmnist"}; }

std::string form_name(Form f) { return f == Form::Merged ? "merged" : "factorized"; }

Form parse_form(const std::string& s) {
  if (s == "factorized") return Form::Factorized;
  if (s == "merged") return Form::Merged;
  fail("unknown attention form '", s, "' (expected factorized or merged)");
}

nlohmann::json config_to_json(const ViTConfig& c) {
  nlohmann::json j;
  j["image_size"] = c.image_size;
  j["patch_size"] = c.patch_size;
  j["in_chans"] = c.in_chans;
  j["dim"] = c.dim;
  j["depth"] = c.depth;
  j["heads"] = c.heads;
  j["mlp_dim"] = c.mlp_dim;
  j["num_classes"] = c.num_classes;
  j["eps"] = c.eps;
  auto forms = [](const std::vector<Form>& fs) {
    nlohmann::json a = nlohmann::json::array();
    for (Form f : fs) a.push_back(form_name(f));
    return a;
  };
  j["qk"] = forms(c.qk);
  j["ov"] = forms(c.ov);
  const io::Preprocess& p = c.preprocess;
  j["preprocess"] = {{"resize", p.resize},     {"resize_exact", p.resize_exact},
                     {"crop", p.crop},         {"interpolation", io::interp_name(p.interp)},
                     {"mean", p.mean},         {"std", p.std}};
  if (!c.class_names.empty()) j["class_names"] = c.class_names;
  return j;
}

ViTConfig config_from_json(const nlohmann::json& j, const std::string& what) {
  if (!j.is_object()) fail(what, ": model config is not a JSON object");
  ViTConfig c;
  try {
    // Numbers are range-checked before they are converted: nlohmann's get<int>() of 1e300
    // (or get<float>()) would be undefined behaviour.
    auto get_int = [&](const nlohmann::json& obj, const char* key, int& dst) {
      if (!obj.contains(key)) return;
      const auto& v = obj.at(key);
      if (!v.is_number_integer()) fail(what, ": config field '", key, "' is not an integer");
      if (v.is_number_unsigned() ? v.get<uint64_t>() > 1000000000ULL
                                 : v.get<long long>() < -1000000000LL || v.get<long long>() > 1000000000LL)
        fail(what, ": config field '", key, "' out of range");
      dst = int(v.get<long long>());
    };
    auto to_float = [&](const nlohmann::json& v, const char* key) {
      if (!v.is_number()) fail(what, ": config field '", key, "' is not a number");
      const double x = v.get<double>();
      if (!(std::abs(x) <= std::numeric_limits<float>::max())) fail(what, ": config field '", key, "' out of range");
      return float(x);
    };
    auto get_floats = [&](const nlohmann::json& obj, const char* key, std::array<float, 3>& dst) {
      if (!obj.contains(key)) return;
      const auto& a = obj.at(key);
      if (!a.is_array() || a.size() != 3) fail(what, ": config field '", key, "' must be 3 numbers");
      for (int i = 0; i < 3; ++i) dst[i] = to_float(a[i], key);
    };
    get_int(j, "image_size", c.image_size);
    get_int(j, "patch_size", c.patch_size);
    get_int(j, "in_chans", c.in_chans);
    get_int(j, "dim", c.dim);
    get_int(j, "depth", c.depth);
    get_int(j, "heads", c.heads);
    get_int(j, "mlp_dim", c.mlp_dim);
    get_int(j, "num_classes", c.num_classes);
    if (j.contains("eps")) c.eps = to_float(j.at("eps"), "eps");
    if (c.depth < 0 || c.depth > 1024) fail(what, ": config depth out of range");
    auto forms = [&](const char* key) {
      std::vector<Form> fs(c.depth, Form::Factorized);
      if (!j.contains(key)) return fs;
      const auto& a = j[key];
      if (!a.is_array() || int(a.size()) != c.depth)
        fail(what, ": config field '", key, "' must list one form per layer (", c.depth, ")");
      for (int l = 0; l < c.depth; ++l) {
        if (!a[l].is_string()) fail(what, ": config field '", key, "' holds a non-string");
        try {
          fs[l] = parse_form(a[l].get<std::string>());
        } catch (const Error& e) {
          fail(what, ": ", e.what());
        }
      }
      return fs;
    };
    c.qk = forms("qk");
    c.ov = forms("ov");
    if (j.contains("preprocess")) {
      const auto& p = j["preprocess"];
      if (!p.is_object()) fail(what, ": config field 'preprocess' is not an object");
      auto& d = c.preprocess;
      get_int(p, "resize", d.resize);
      if (p.contains("resize_exact")) d.resize_exact = p["resize_exact"].get<bool>();
      get_int(p, "crop", d.crop);
      if (p.contains("interpolation")) {
        try {
          d.interp = io::parse_interp(p["interpolation"].get<std::string>());
        } catch (const Error& e) {
          fail(what, ": ", e.what());
        }
      }
      get_floats(p, "mean", d.mean);
      get_floats(p, "std", d.std);
    }
    if (j.contains("class_names")) c.class_names = j["class_names"].get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception& e) {
    fail(what, ": malformed model config (", e.what(), ")");
  }
  c.validate(what);
  return c;
}

ViTConfig config_from_text(const std::string& text, const std::string& what) {
  // The deepest valid config is three levels (preprocess.mean); the slack costs nothing.
  return config_from_json(io::parse_json(text, 8, what + ": model config"), what);
}

}  // namespace vitqk
