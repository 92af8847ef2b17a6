#include "io/naming.h"

#include <gtest/gtest.h>

#include <limits>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/params.h"

namespace vitqk::io {
namespace {

// The tensor list of a vitqk layout (timm naming), for a small config.
std::vector<TensorSpec> timm_specs(const ViTConfig& c) {
  std::vector<TensorSpec> s;
  const ParamLayout layout(c);
  for (const auto& p : layout.params()) s.push_back({p.name, p.shape});
  return s;
}

ViTConfig small() {
  ViTConfig c;
  c.image_size = 32, c.patch_size = 8, c.in_chans = 3, c.dim = 64, c.depth = 2, c.heads = 4, c.mlp_dim = 128;
  c.num_classes = 10;
  c.qk.assign(2, Form::Factorized);
  c.ov.assign(2, Form::Factorized);
  return c;
}

std::vector<TensorSpec> rename(std::vector<TensorSpec> specs, const std::string& from, const std::string& to) {
  for (auto& s : specs)
    if (s.name == from) s.name = to;
  return specs;
}

void expect_error(const std::vector<TensorSpec>& specs, const std::string& needle, LoadOptions opts = {}) {
  try {
    infer_model(specs, {}, opts, "m.safetensors");
    FAIL() << "expected an error containing '" << needle << "'";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("m.safetensors"), std::string::npos) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "one line: " << msg;
  }
}

TEST(Naming, InfersTimmConfigFromShapes) {
  const Inferred inf = infer_model(timm_specs(small()), {}, {.heads = 4}, "m");
  EXPECT_EQ(inf.naming, Naming::Timm);
  const ViTConfig& c = inf.config;
  EXPECT_EQ(c.image_size, 32);
  EXPECT_EQ(c.patch_size, 8);
  EXPECT_EQ(c.dim, 64);
  EXPECT_EQ(c.depth, 2);
  EXPECT_EQ(c.heads, 4);
  EXPECT_EQ(c.mlp_dim, 128);
  EXPECT_EQ(c.num_classes, 10);
  EXPECT_FLOAT_EQ(c.eps, 1e-6f);
  EXPECT_EQ(c.preprocess.interp, Interp::Bicubic);
  EXPECT_EQ(inf.placements.size(), timm_specs(small()).size());
}

TEST(Naming, DefaultsToHeadWidth64WithANote) {
  const Inferred inf = infer_model(timm_specs(small()), {}, {}, "m");
  EXPECT_EQ(inf.config.heads, 1);
  ASSERT_EQ(inf.notes.size(), 1u);
  EXPECT_NE(inf.notes[0].find("--heads"), std::string::npos);
}

TEST(Naming, RefusesToGuessHeadsWhenWidthIsNotAMultipleOf64) {
  ViTConfig c = small();
  c.dim = 48, c.heads = 3;
  expect_error(timm_specs(c), "--heads");
}

TEST(Naming, HuggingFaceSplitQkvFillsThirdsOfTheFusedTensor) {
  const ViTConfig c = small();
  std::vector<TensorSpec> hf = {{"vit.embeddings.cls_token", {1, 1, 64}},
                                {"vit.embeddings.position_embeddings", {1, 17, 64}},
                                {"vit.embeddings.patch_embeddings.projection.weight", {64, 3, 8, 8}},
                                {"vit.embeddings.patch_embeddings.projection.bias", {64}},
                                {"vit.layernorm.weight", {64}},
                                {"vit.layernorm.bias", {64}},
                                {"classifier.weight", {10, 64}},
                                {"classifier.bias", {10}}};
  for (int l = 0; l < 2; ++l) {
    const std::string p = "vit.encoder.layer." + std::to_string(l) + ".";
    for (const char* m : {"layernorm_before", "layernorm_after"}) {
      hf.push_back({p + m + ".weight", {64}});
      hf.push_back({p + m + ".bias", {64}});
    }
    for (const char* m : {"attention.attention.query", "attention.attention.key", "attention.attention.value",
                          "attention.output.dense"}) {
      hf.push_back({p + m + ".weight", {64, 64}});
      hf.push_back({p + m + ".bias", {64}});
    }
    hf.push_back({p + "intermediate.dense.weight", {128, 64}});
    hf.push_back({p + "intermediate.dense.bias", {128}});
    hf.push_back({p + "output.dense.weight", {64, 128}});
    hf.push_back({p + "output.dense.bias", {64}});
  }
  hf.push_back({"vit.pooler.dense.weight", {64, 64}});
  const Inferred inf = infer_model(hf, {}, {.heads = 4}, "m");
  EXPECT_EQ(inf.naming, Naming::HuggingFace);
  EXPECT_FLOAT_EQ(inf.config.eps, 1e-12f);
  EXPECT_TRUE(inf.config.preprocess.resize_exact);
  int seen = 0;
  for (const auto& p : inf.placements) {
    if (p.source == "vit.encoder.layer.1.attention.attention.key.weight") {
      EXPECT_EQ(p.target, "blocks.1.attn.qkv.weight");
      EXPECT_EQ(p.row_offset, 64);
      ++seen;
    }
    if (p.source == "vit.encoder.layer.0.attention.attention.value.bias") {
      EXPECT_EQ(p.target, "blocks.0.attn.qkv.bias");
      EXPECT_EQ(p.row_offset, 128);
      ++seen;
    }
  }
  EXPECT_EQ(seen, 2);
  ASSERT_FALSE(inf.notes.empty());  // the pooler is skipped, and said so

  // A missing third is refused.
  std::vector<TensorSpec> partial;
  for (auto& s : hf)
    if (s.name != "vit.encoder.layer.0.attention.attention.value.weight") partial.push_back(s);
  expect_error(partial, "partly present", {.heads = 4});
}

TEST(Naming, TorchvisionNamesMapOntoTimm) {
  std::vector<TensorSpec> tv = {{"class_token", {1, 1, 64}},      {"conv_proj.weight", {64, 3, 8, 8}},
                                {"conv_proj.bias", {64}},          {"encoder.pos_embedding", {1, 17, 64}},
                                {"encoder.ln.weight", {64}},       {"encoder.ln.bias", {64}},
                                {"heads.head.weight", {10, 64}},   {"heads.head.bias", {10}}};
  const std::string p = "encoder.layers.encoder_layer_0.";
  for (const char* m : {"ln_1", "ln_2"}) tv.push_back({p + m + ".weight", {64}}), tv.push_back({p + m + ".bias", {64}});
  tv.push_back({p + "self_attention.in_proj_weight", {192, 64}});
  tv.push_back({p + "self_attention.in_proj_bias", {192}});
  tv.push_back({p + "self_attention.out_proj.weight", {64, 64}});
  tv.push_back({p + "self_attention.out_proj.bias", {64}});
  tv.push_back({p + "mlp.0.weight", {128, 64}});
  tv.push_back({p + "mlp.0.bias", {128}});
  tv.push_back({p + "mlp.3.weight", {64, 128}});
  tv.push_back({p + "mlp.3.bias", {64}});
  const Inferred inf = infer_model(tv, {}, {.heads = 2}, "m");
  EXPECT_EQ(inf.naming, Naming::Torchvision);
  EXPECT_EQ(inf.config.depth, 1);
  EXPECT_EQ(inf.config.preprocess.resize, 36);  // 32 / 0.875, as 224 -> 256
}

TEST(Naming, MergedFormsAndHeadsComeFromTheNames) {
  ViTConfig c = small();
  c.qk[1] = Form::Merged;
  c.ov[0] = Form::Merged;
  const Inferred inf = infer_model(timm_specs(c), {}, {}, "m");
  EXPECT_EQ(inf.config.heads, 4);  // attn.qk.weight is [H*D, D]
  EXPECT_EQ(inf.config.qk[0], Form::Factorized);
  EXPECT_EQ(inf.config.qk[1], Form::Merged);
  EXPECT_EQ(inf.config.ov[0], Form::Merged);
  EXPECT_EQ(inf.config.ov[1], Form::Factorized);
}

TEST(Naming, BadTensorListsAreRefusedNamingTheTensor) {
  const auto good = timm_specs(small());
  expect_error(rename(good, "blocks.1.mlp.fc1.bias", "blocks.1.mlp.fc1.gamma"), "blocks.1.mlp.fc1.gamma");
  std::vector<TensorSpec> missing(good.begin(), good.end() - 1);  // no head.bias
  expect_error(missing, "missing tensor 'head.bias'", {.heads = 4});
  auto extra = good;
  extra.push_back({"blocks.0.ls1.gamma", {64}});
  expect_error(extra, "blocks.0.ls1.gamma", {.heads = 4});
  auto wrong = good;
  for (auto& s : wrong)
    if (s.name == "blocks.0.attn.proj.weight") s.shape = {64, 63};
  expect_error(wrong, "blocks.0.attn.proj.weight", {.heads = 4});
  auto dup = good;
  dup.push_back(dup[5]);
  expect_error(dup, "twice", {.heads = 4});
  auto gap = rename(good, "blocks.1.norm1.weight", "blocks.7.norm1.weight");
  expect_error(gap, "missing tensor 'blocks.1.norm1.weight'", {.heads = 4});  // 8 layers implied, 1-6 absent
  auto nonsquare = good;
  nonsquare[1].shape = {1, 18, 64};  // pos_embed: 17 patches
  expect_error(nonsquare, "square grid", {.heads = 4});
  expect_error({}, "missing tensor", {.heads = 4});
  expect_error(good, "not divisible", {.heads = 5});
}

TEST(Naming, AbsurdShapesAreRefusedWithoutAllocating) {
  auto specs = timm_specs(small());
  specs[2].shape = {int64_t(1) << 40, 3, 8, 8};  // patch_embed.proj.weight
  expect_error(specs, "out of", {.heads = 4});
  specs = timm_specs(small());
  specs[1].shape = {1, (int64_t(1) << 40) + 1, 64};
  expect_error(specs, "pos_embed", {.heads = 4});
  // Found by fuzz_naming: near 2^63, the grid side's square root rounds up to 3037000500, whose
  // square overflows int64 (UB) before any check.
  for (int64_t tokens : {int64_t(3037000499) * 3037000499 + 1, std::numeric_limits<int64_t>::max()}) {
    specs[1].shape = {1, tokens, 64};
    expect_error(specs, "pos_embed", {.heads = 4});
  }
}

TEST(Naming, MetadataConfigWinsEpsFlagOverridesItHeadsFlagMustAgree) {
  ViTConfig c = small();
  c.eps = 1e-5f;
  c.class_names = {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"};
  const std::map<std::string, std::string> meta{{"vitqk", config_to_json(c).dump()}};
  Inferred inf = infer_model(timm_specs(c), meta, {}, "m");
  EXPECT_FLOAT_EQ(inf.config.eps, 1e-5f);
  EXPECT_EQ(inf.config.heads, 4);
  EXPECT_EQ(inf.config.class_names[9], "j");
  inf = infer_model(timm_specs(c), meta, {.heads = 4, .eps = 1e-3f}, "m");
  EXPECT_EQ(inf.config.heads, 4);
  EXPECT_FLOAT_EQ(inf.config.eps, 1e-3f);
  // Splitting the same weights into other heads is another model: refused, not run silently.
  try {
    infer_model(timm_specs(c), meta, {.heads = 2}, "m.safetensors");
    FAIL() << "--heads 2 against 4 recorded";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "m.safetensors: the file records 4 attention heads; --heads 2 contradicts it (leave --heads out)");
  }
  for (auto [bad, needle] : {std::pair{"{not json", "not valid JSON"}, {"{\"depth\": \"two\"}", "depth"},
                              {"[1, 2]", "not a JSON object"}, {"{\"qk\": [\"merged\"]}", "one form per layer"}}) {
    try {
      infer_model(timm_specs(c), {{"vitqk", bad}}, {}, "m.safetensors");
      FAIL() << bad;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("m.safetensors"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace vitqk::io
