#include "model/convert.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "testing.h"

namespace vitqk {
namespace {

using testing::randomize;
using testing::tiny_config;

ViT random_model(const ViTConfig& c, uint64_t seed) {
  ViT m(c);
  randomize(m, seed);
  return m;
}

std::vector<Form> all(int depth, Form f) { return std::vector<Form>(depth, f); }

// Merging is exact in real arithmetic; in float32 the products W_k^T W_q and the
// bias folds round differently from the factorized path: ~1e-6 relative on these sizes.
constexpr double kTol = 2e-5;

TEST(Convert, MergeIsExactForEveryPairCombination) {
  for (int heads : {1, 2, 4}) {
    const ViT m = random_model(tiny_config(heads), 7 + heads);
    for (Form qk : {Form::Factorized, Form::Merged})
      for (Form ov : {Form::Factorized, Form::Merged}) {
        const ViT c = convert(m, all(2, qk), all(2, ov));
        const LogitDiff d = compare_on_random_batch(m, c, 3);
        EXPECT_GT(d.max_abs_logit, 0.1) << "logits too small to test anything";
        EXPECT_LT(d.relative(), kTol) << heads << " heads, " << form_name(qk) << "/" << form_name(ov);
      }
  }
}

TEST(Convert, MixedLayersAndRoundTripReproduceTheLogits) {
  const ViT m = random_model(tiny_config(4), 3);
  const ViT mixed = convert(m, {Form::Merged, Form::Factorized}, {Form::Factorized, Form::Merged});
  EXPECT_EQ(mixed.layout.find("blocks.0.attn.qk.weight")->shape, (std::vector<int64_t>{4 * 32, 32}));
  EXPECT_NE(mixed.layout.find("blocks.1.attn.q.weight"), nullptr);
  EXPECT_NE(mixed.layout.find("blocks.1.attn.ov.weight"), nullptr);
  EXPECT_LT(compare_on_random_batch(m, mixed).relative(), kTol);
  std::vector<HeadReport> report;
  const ViT back = convert(mixed, all(2, Form::Factorized), all(2, Form::Factorized), {}, &report);
  EXPECT_LT(compare_on_random_batch(m, back).relative(), kTol);
  ASSERT_EQ(report.size(), 8u);  // 4 heads of layer 0 (qk) + 4 of layer 1 (ov)
  for (const auto& h : report) {
    EXPECT_LE(h.numerical_rank, 8 + (h.pair == "qk"));  // d_h = 8; qk's bias row adds at most one
    EXPECT_LT(h.rel_error, 1e-6);
  }
}

TEST(Convert, KeyBiasDropsOutAndQueryBiasFolds) {
  ViT m = random_model(tiny_config(2), 11);
  const ViT merged = convert(m, all(2, Form::Merged), all(2, Form::Factorized));
  // Change only the key bias: the merged model (which has no key bias) still matches.
  const float* kb = m.p(m.layout.blocks[0].b_in) + 32;
  ViT shifted = m;
  float* skb = shifted.p(shifted.layout.blocks[0].b_in) + 32;
  for (int i = 0; i < 32; ++i) skb[i] = kb[i] + 5.0f;
  EXPECT_LT(compare_on_random_batch(shifted, merged).relative(), kTol);
  // Change the query bias: the merged model no longer matches, so u_h really carries it.
  ViT qshift = m;
  qshift.p(qshift.layout.blocks[0].b_in)[0] += 1.0f;
  EXPECT_GT(compare_on_random_batch(qshift, merged).relative(), 1e-3);
}

TEST(Convert, TruncatedUnmergeReportsRankAndError) {
  // A merged model trained freely is full rank: make one by perturbing every qk block.
  const ViT m = random_model(tiny_config(4), 5);
  ViT merged = convert(m, all(2, Form::Merged), all(2, Form::Factorized));
  Rng rng(1);
  const auto* qk = merged.layout.find("blocks.0.attn.qk.weight");
  for (size_t i = 0; i < qk->numel; ++i) merged.p(qk->offset)[i] += 0.05f * rng.normal();
  std::vector<HeadReport> report;
  const ViT f = convert(merged, all(2, Form::Factorized), all(2, Form::Factorized), {.rank = 3}, &report);
  ASSERT_EQ(report.size(), 8u);
  for (const auto& h : report) {
    EXPECT_EQ(h.rank, 3);
    EXPECT_GT(h.rel_error, 1e-3);
    if (h.layer == 0) {
      EXPECT_EQ(h.numerical_rank, 32);  // full rank after the perturbation
    }
  }
  // --tol picks the smallest rank meeting it, capped at d_h.
  report.clear();
  convert(merged, all(2, Form::Factorized), all(2, Form::Factorized), {.tol = 1e-9}, &report);
  for (const auto& h : report)
    if (h.layer == 1) {
      EXPECT_LE(h.rank, 8);
    }
  EXPECT_GT(compare_on_random_batch(merged, f).max_abs_diff, 0.0);
}

TEST(Convert, ParseLayers) {
  EXPECT_EQ(parse_layers("all", 3), (std::vector<bool>{true, true, true}));
  EXPECT_EQ(parse_layers("none", 2), (std::vector<bool>{false, false}));
  EXPECT_EQ(parse_layers("0,2-3", 5), (std::vector<bool>{true, false, true, true, false}));
  EXPECT_THROW(parse_layers("5", 3), Error);
  EXPECT_THROW(parse_layers("1-0", 3), Error);
  EXPECT_THROW(parse_layers("a", 3), Error);
  EXPECT_THROW(parse_layers("1,,", 3), Error);
  EXPECT_THROW(parse_layers("99999999999", 3), Error);
}

}  // namespace
}  // namespace vitqk
