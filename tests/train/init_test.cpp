// Initialisation in both of timm's schemes, and the merged forms' two starts: the product is
// the factorized model's function, the random matrix has the product's entry variance.
#include "train/init.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "model/convert.h"
#include "model/cost.h"

namespace vitqk {
namespace {

struct Stats {
  double mean = 0, std = 0, max_abs = 0;
};

Stats stats_of(const ViT& m, const std::string& name) {
  const ParamInfo* p = m.layout.find(name);
  EXPECT_NE(p, nullptr) << name;
  if (!p) return {};
  Stats s;
  const float* v = m.p(p->offset);
  for (size_t i = 0; i < p->numel; ++i) s.mean += v[i], s.max_abs = std::max(s.max_abs, double(std::fabs(v[i])));
  s.mean /= double(p->numel);
  for (size_t i = 0; i < p->numel; ++i) s.std += (v[i] - s.mean) * (v[i] - s.mean);
  s.std = std::sqrt(s.std / double(p->numel));
  return s;
}

TEST(Init, TimmIsNormal002WithZeroBiasesAndUnitNorms) {
  ViT m(preset("fmnist"));
  init_params(m, 3);
  for (const char* w : {"blocks.0.attn.qkv.weight", "blocks.5.mlp.fc2.weight", "head.weight", "pos_embed"})
    EXPECT_NEAR(stats_of(m, w).std, 0.02, 0.002) << w;
  EXPECT_EQ(stats_of(m, "blocks.0.mlp.fc1.bias").max_abs, 0.0);
  EXPECT_EQ(stats_of(m, "blocks.2.norm1.weight").mean, 1.0);
  EXPECT_LT(stats_of(m, "cls_token").max_abs, 1e-5);
}

TEST(Init, JaxIsXavierLecunAndAZeroHead) {
  ViT m(preset("fmnist"));  // width 64, MLP 128, patch 4x4x1
  init_params(m, 3, MergedInit::Product, WeightInit::Jax);
  const double D = 64, M = 128;
  // Xavier uniform: bound sqrt(6 / (fan_in + fan_out)), std bound / sqrt(3); qkv as one matrix.
  for (auto [name, rows, cols] : {std::tuple{"blocks.0.attn.qkv.weight", 3 * D, D},
                                  {"blocks.1.attn.proj.weight", D, D},
                                  {"blocks.2.mlp.fc1.weight", M, D},
                                  {"blocks.3.mlp.fc2.weight", D, M}}) {
    const Stats s = stats_of(m, name);
    const double bound = std::sqrt(6.0 / (rows + cols));
    EXPECT_LE(s.max_abs, bound) << name;
    EXPECT_GT(s.max_abs, 0.95 * bound) << name;
    EXPECT_NEAR(s.std, bound / std::sqrt(3.0), 0.05 * bound) << name;
  }
  // LeCun normal truncated at 2 sigma, scaled so that the truncated std is sqrt(1 / fan_in).
  const Stats patch = stats_of(m, "patch_embed.proj.weight");
  const double lecun = std::sqrt(1.0 / 16);
  EXPECT_NEAR(patch.std, lecun, 0.1 * lecun);
  EXPECT_LE(patch.max_abs, 2 * lecun / 0.87962566103423978 + 1e-6);
  EXPECT_EQ(stats_of(m, "head.weight").max_abs, 0.0);
  EXPECT_EQ(stats_of(m, "blocks.0.attn.qkv.bias").max_abs, 0.0);
  const Stats mlp_bias = stats_of(m, "blocks.0.mlp.fc1.bias");
  EXPECT_GT(mlp_bias.max_abs, 0.0);
  EXPECT_LT(mlp_bias.max_abs, 1e-5);
  EXPECT_NEAR(stats_of(m, "pos_embed").std, 0.02, 0.002);
  EXPECT_EQ(stats_of(m, "blocks.4.norm2.weight").mean, 1.0);
}

TEST(Init, MergedStartsAsTheProductOrAtItsVariance) {
  for (WeightInit w : {WeightInit::Timm, WeightInit::Jax}) {
    SCOPED_TRACE(w == WeightInit::Jax ? "jax" : "timm");
    ViTConfig c = preset("fmnist");
    ViT fact(c);
    init_params(fact, 5, MergedInit::Product, w);
    ViTConfig mc = with_forms(c, Form::Merged, Form::Merged);
    ViT product(mc), random(mc);
    init_params(product, 5, MergedInit::Product, w);
    init_params(random, 5, MergedInit::Random, w);
    // The product start is the exact merge of the factorized start of the same seed.
    const ViT merged = convert(fact, mc.qk, mc.ov);
    EXPECT_EQ(merged.params, product.params);
    // The random start: the product's entry std (within sampling error), but another matrix.
    for (const char* name : {"blocks.0.attn.qk.weight", "blocks.0.attn.ov.weight"}) {
      const Stats p = stats_of(product, name), r = stats_of(random, name);
      EXPECT_NEAR(r.std / p.std, 1.0, 0.1) << name;
      const ParamInfo* info = random.layout.find(name);
      EXPECT_NE(std::vector<float>(product.p(info->offset), product.p(info->offset) + info->numel),
                std::vector<float>(random.p(info->offset), random.p(info->offset) + info->numel));
    }
  }
}

TEST(Init, SchemesAreParsedByName) {
  EXPECT_EQ(parse_weight_init("jax"), WeightInit::Jax);
  EXPECT_EQ(parse_weight_init("timm"), WeightInit::Timm);
  EXPECT_THROW(parse_weight_init("xavier"), Error);
}

}  // namespace
}  // namespace vitqk
