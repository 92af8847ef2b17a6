#include "model/cost.h"

#include <gtest/gtest.h>

#include "model/params.h"

namespace vitqk {
namespace {

int64_t layout_params(const ViTConfig& c) { return int64_t(ParamLayout(c).size()); }

TEST(Cost, VitB16FactorizedParamsMatchTimm) {
  // timm's vit_base_patch16_224 has 86,567,656 parameters.
  EXPECT_EQ(model_cost(preset("vit-b16")).total().params, 86567656);
}

TEST(Cost, ParamsAgreeWithTheLayoutInEveryForm) {
  for (const char* name : {"vit-ti16", "vit-b16", "fmnist"})
    for (Form qk : {Form::Factorized, Form::Merged})
      for (Form ov : {Form::Factorized, Form::Merged}) {
        const ViTConfig c = with_forms(preset(name), qk, ov);
        EXPECT_EQ(model_cost(c).total().params, layout_params(c)) << name << " " << form_name(qk) << "/" << form_name(ov);
      }
}

TEST(Cost, MergedQkAddsExactlyTheDesignNoteExtra) {
  const ViTConfig c = preset("vit-b16");
  const int64_t L = c.depth, H = c.heads, d = c.dim;
  const int64_t fact = model_cost(c).total().params;
  const int64_t merged = model_cost(with_forms(c, Form::Merged, Form::Factorized)).total().params;
  EXPECT_EQ(merged - fact, L * ((H - 2) * d * d + (H - 2) * d));
}

TEST(Cost, VitB16MergedQkPathIsAbout6Point7TimesTheMacs) {
  const ViTConfig c = preset("vit-b16");
  const Cost f = qk_cost(c.dim, c.heads, c.tokens(), Form::Factorized);
  const Cost m = qk_cost(c.dim, c.heads, c.tokens(), Form::Merged);
  // Design notes: (H n d^2 + H n^2 d) / (2 n d^2 + n^2 d) = 6.7 for d=768, H=12, n=197.
  EXPECT_NEAR(double(m.macs) / double(f.macs), 6.68, 0.01);
  EXPECT_NEAR(double(m.params) / double(f.params), 6.0, 0.01);
}

TEST(Cost, AutoMergesSingleHeadLayersOnly) {
  ViTConfig one = preset("vit-b16");
  one.heads = 1;
  const ViTConfig a1 = auto_forms(one);
  EXPECT_EQ(a1.qk[0], Form::Merged);
  EXPECT_EQ(a1.ov[0], Form::Merged);
  // A single head saves n d^2 of the 2 n d^2 + n^2 d query-key MACs.
  const Cost f = qk_cost(768, 1, 197, Form::Factorized), m = qk_cost(768, 1, 197, Form::Merged);
  EXPECT_EQ(f.macs - m.macs, int64_t(197) * 768 * 768);
  const ViTConfig ab = auto_forms(preset("vit-b16"));
  for (int l = 0; l < ab.depth; ++l) {
    EXPECT_EQ(ab.qk[l], Form::Factorized);
    EXPECT_EQ(ab.ov[l], Form::Factorized);
  }
}

// The forward pass computes the last block for the class token only, but every token's keys and
// values: ViT-B/16 saves 196 rows of queries, scores, weighted values, W_O and the MLP.
TEST(Cost, ForwardSkipsAllButTheClassTokenInTheLastBlock) {
  const ViTConfig c = preset("vit-b16");
  const int64_t D = c.dim, M = c.mlp_dim, n = c.tokens(), rows = n - 1;
  const int64_t saved = model_cost(c).total().macs - forward_cost(c).total().macs;
  EXPECT_EQ(saved, rows * (D * D + n * D + n * D + D * D + 2 * D * M));
  // Merged: the H per-head query projections p_h, H score rows and H weighted-value rows.
  const ViTConfig m = with_forms(c, Form::Merged, Form::Merged);
  const int64_t H = c.heads;
  EXPECT_EQ(model_cost(m).total().macs - forward_cost(m).total().macs,
            rows * (H * D * D + H * n * D + H * n * D + H * D * D + 2 * D * M));
  for (int l = 0; l + 1 < c.depth; ++l) EXPECT_EQ(forward_cost(c).layers[l].total().macs, model_cost(c).layers[l].total().macs);
}

TEST(Cost, TokensOverrideChangesScoreMacsQuadratically) {
  const ViTConfig c = preset("vit-ti16");
  const Cost a = qk_cost(c.dim, c.heads, 100, Form::Factorized), b = qk_cost(c.dim, c.heads, 200, Form::Factorized);
  // proj 2 n D^2 doubles, scores n^2 D quadruples.
  EXPECT_EQ(b.macs - 2 * a.macs, int64_t(2) * 100 * 100 * c.dim);
}

}  // namespace
}  // namespace vitqk
