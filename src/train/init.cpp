#include "train/init.h"

#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/rng.h"
#include "model/convert.h"
#include "model/cost.h"

namespace vitqk {

namespace {

constexpr float kStd = 0.02f;

bool is_norm_weight(const ParamInfo& p) {
  return p.name.find("norm") != std::string::npos && p.name.ends_with(".weight");
}

// The standard deviation of the entries of a linear weight [rows, cols] under `w`.
float linear_std(int64_t rows, int64_t cols, WeightInit w) {
  if (w == WeightInit::Timm) return kStd;
  return std::sqrt(2.0f / float(rows + cols));  // Xavier: a uniform distribution of this variance
}

}  // namespace

void init_param(const ParamInfo& p, float* v, Rng& rng, WeightInit w) {
  const bool jax = w == WeightInit::Jax;
  auto each = [&](auto draw) {
    for (size_t i = 0; i < p.numel; ++i) v[i] = draw();
  };
  if (p.name == "cls_token") each([&] { return 1e-6f * rng.normal(); });
  else if (is_norm_weight(p)) each([] { return 1.0f; });
  else if (p.shape.size() == 1) {
    const bool tiny = jax && p.name.find(".mlp.") != std::string::npos;
    each([&] { return tiny ? 1e-6f * rng.normal() : 0.0f; });
  } else if (!jax || p.name == "pos_embed") {
    each([&] { return kStd * rng.normal(); });
  } else if (p.name.starts_with("head.")) {
    each([] { return 0.0f; });
  } else if (p.shape.size() == 4) {  // the patch projection: LeCun normal, as jax's truncated at 2 sigma
    const float std = std::sqrt(1.0f / float(p.numel / p.shape[0])) / 0.87962566103423978f;
    each([&] {
      float z;
      do z = rng.normal();
      while (std::fabs(z) > 2.0f);
      return std * z;
    });
  } else {
    const float bound = std::sqrt(3.0f) * linear_std(p.shape[0], p.shape[1], w);
    each([&] { return bound * (2.0f * rng.uniform() - 1.0f); });
  }
}

MergedInit parse_merged_init(const std::string& s) {
  if (s == "product") return MergedInit::Product;
  if (s == "random") return MergedInit::Random;
  fail("--merged-init ", s, ": expected product or random");
}

WeightInit parse_weight_init(const std::string& s) {
  if (s == "timm") return WeightInit::Timm;
  if (s == "jax") return WeightInit::Jax;
  fail("--weight-init ", s, ": expected timm or jax");
}

void init_params(ViT& m, uint64_t seed, MergedInit merged_init, WeightInit weight_init) {
  Rng rng(seed);
  const ViTConfig& c = m.cfg;
  if (!c.any_merged()) {  // in place: no copy of a large model
    for (const ParamInfo& p : m.layout.params()) init_param(p, m.p(p.offset), rng, weight_init);
    return;
  }
  // Start from the factorized model with the same seed, so every form shares every
  // non-attention parameter at step 0.
  ViT f(with_forms(c, Form::Factorized, Form::Factorized));
  for (const ParamInfo& p : f.layout.params()) init_param(p, f.p(p.offset), rng, weight_init);
  m = convert(f, c.qk, c.ov);
  if (merged_init == MergedInit::Product) return;
  const long D = c.dim;
  const float s_qkv = linear_std(3 * D, D, weight_init), s_proj = linear_std(D, D, weight_init);
  const float qk_std = s_qkv * s_qkv, ov_std = std::sqrt(float(c.head_dim())) * s_qkv * s_proj;
  for (const ParamInfo& p : m.layout.params()) {
    const bool qk = p.name.ends_with("attn.qk.weight"), ov = p.name.ends_with("attn.ov.weight");
    if (!qk && !ov) continue;
    float* v = m.p(p.offset);
    for (size_t i = 0; i < p.numel; ++i) v[i] = (qk ? qk_std : ov_std) * rng.normal();
  }
}

}  // namespace vitqk
