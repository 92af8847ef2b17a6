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

}  // namespace

void init_param(const ParamInfo& p, float* v, Rng& rng) {
  const bool norm_weight = p.name.find("norm") != std::string::npos && p.name.ends_with(".weight");
  for (size_t i = 0; i < p.numel; ++i) {
    if (p.name == "cls_token") v[i] = 1e-6f * rng.normal();
    else if (norm_weight) v[i] = 1.0f;
    else if (p.shape.size() == 1) v[i] = 0.0f;
    else v[i] = kStd * rng.normal();
  }
}

MergedInit parse_merged_init(const std::string& s) {
  if (s == "product") return MergedInit::Product;
  if (s == "random") return MergedInit::Random;
  fail("--merged-init ", s, ": expected product or random");
}

void init_params(ViT& m, uint64_t seed, MergedInit merged_init) {
  Rng rng(seed);
  const ViTConfig& c = m.cfg;
  if (!c.any_merged()) {  // in place: no copy of a large model
    for (const ParamInfo& p : m.layout.params()) init_param(p, m.p(p.offset), rng);
    return;
  }
  // Start from the factorized model with the same seed, so every form shares every
  // non-attention parameter at step 0.
  ViT f(with_forms(c, Form::Factorized, Form::Factorized));
  for (const ParamInfo& p : f.layout.params()) init_param(p, f.p(p.offset), rng);
  m = convert(f, c.qk, c.ov);
  if (merged_init == MergedInit::Product) return;
  const float qk_std = kStd * kStd, ov_std = std::sqrt(float(c.head_dim())) * kStd * kStd;
  for (const ParamInfo& p : m.layout.params()) {
    const bool qk = p.name.ends_with("attn.qk.weight"), ov = p.name.ends_with("attn.ov.weight");
    if (!qk && !ov) continue;
    float* v = m.p(p.offset);
    for (size_t i = 0; i < p.numel; ++i) v[i] = (qk ? qk_std : ov_std) * rng.normal();
  }
}

}  // namespace vitqk
