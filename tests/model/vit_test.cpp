// The forward pass against PyTorch: checkpoints written by tools/gen_fixtures.py in the
// three namings, with torchvision's logits computed in float64.
#include "model/vit.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/peak.h"
#include "core/threads.h"
#include "io/model_file.h"
#include "io/safetensors.h"
#include "model/convert.h"
#include "testing.h"

namespace vitqk {
namespace {

using testing::fixture;

nlohmann::json manifest() {
  std::ifstream f(fixture("models/manifest.json"));
  return nlohmann::json::parse(f);
}

struct Case {
  ViT model;
  std::vector<float> pixels, logits;
  int batch;
};

Case load_case(const nlohmann::json& e) {
  io::LoadOptions opts;
  opts.heads = e["heads"].get<int>();
  io::LoadedModel lm = io::load_model(fixture("models/" + e["file"].get<std::string>()), opts);
  const io::SafeTensorsReader io(fixture("models/" + e["io"].get<std::string>()));
  std::vector<float> px = io.read(*io.find("pixel_values"));
  std::vector<float> lg = io.read(*io.find("logits"));
  const int batch = int(io.find("pixel_values")->shape[0]);
  return {std::move(lm.model), std::move(px), std::move(lg), batch};
}

double max_diff(const float* a, const std::vector<float>& b) {
  double m = 0;
  for (size_t i = 0; i < b.size(); ++i) m = std::max(m, double(std::fabs(a[i] - b[i])));
  return m;
}

// Tolerance: float32 accumulation over a few hundred terms per GEMM and two to three
// layers gives ~1e-6 here (PyTorch's own float32 run differs from its float64 run by about
// as much: manifest "f32_vs_f64"); 1e-4 absolute on logits of order one leaves room for
// summation order, not for a wrong op.
constexpr double kTol = 1e-4;

TEST(ViTForward, MatchesPyTorchInEveryNaming) {
  const auto m = manifest();
  ASSERT_GE(m.size(), 5u);
  std::set<std::string> namings;
  for (const auto& e : m) {
    SCOPED_TRACE(e["name"].get<std::string>());
    Case c = load_case(e);
    namings.insert(e["naming"].get<std::string>());
    EXPECT_EQ(c.model.cfg.dim, e["dim"].get<int>());
    EXPECT_EQ(c.model.cfg.depth, e["depth"].get<int>());
    EXPECT_EQ(c.model.cfg.image_size, e["image_size"].get<int>());
    EXPECT_FLOAT_EQ(c.model.cfg.eps, e["eps"].get<float>());
    Activations a;
    vit_forward(c.model, c.pixels.data(), c.batch, a);
    double mx = 0;
    for (float v : c.logits) mx = std::max(mx, double(std::fabs(v)));
    EXPECT_GT(mx, 0.3) << "fixture logits too small to test anything";
    EXPECT_LT(max_diff(a.logits, c.logits), kTol);
  }
  EXPECT_EQ(namings.size(), 3u);
}

TEST(ViTForward, MergedAndUnmergedFormsMatchPyTorch) {
  for (const auto& e : manifest()) {
    SCOPED_TRACE(e["name"].get<std::string>());
    Case c = load_case(e);
    const int L = c.model.cfg.depth;
    for (Form qk : {Form::Factorized, Form::Merged})
      for (Form ov : {Form::Factorized, Form::Merged}) {
        const ViT conv = convert(c.model, std::vector<Form>(L, qk), std::vector<Form>(L, ov));
        const ViT back = convert(conv, std::vector<Form>(L, Form::Factorized), std::vector<Form>(L, Form::Factorized));
        for (const ViT* v : {&conv, &back}) {
          Activations a;
          vit_forward(*v, c.pixels.data(), c.batch, a);
          EXPECT_LT(max_diff(a.logits, c.logits), kTol) << form_name(qk) << "/" << form_name(ov);
        }
      }
  }
}

// Packed weights (inference) against the same PyTorch logits, in every form.
TEST(PackedViT, Fp32MatchesPyTorchInEveryForm) {
  for (const auto& e : manifest()) {
    SCOPED_TRACE(e["name"].get<std::string>());
    Case c = load_case(e);
    const int L = c.model.cfg.depth;
    for (Form qk : {Form::Factorized, Form::Merged})
      for (Form ov : {Form::Factorized, Form::Merged}) {
        const PackedViT p(convert(c.model, std::vector<Form>(L, qk), std::vector<Form>(L, ov)), Precision::F32);
        Activations a;
        vit_forward(p, c.pixels.data(), c.batch, a);
        EXPECT_LT(max_diff(a.logits, c.logits), kTol) << form_name(qk) << "/" << form_name(ov);
      }
  }
}

// bf16 weights and GEMM inputs: the error is bounded by bf16's 8 significant bits, not
// zero (the test would pass for an fp32 run otherwise).
TEST(PackedViT, Bf16StaysNearFp32) {
  if (!cpu_info().avx512_bf16) GTEST_SKIP() << "no AVX512-BF16 on this CPU";
  for (const auto& e : manifest()) {
    SCOPED_TRACE(e["name"].get<std::string>());
    Case c = load_case(e);
    const PackedViT p(c.model, Precision::BF16);
    Activations a;
    vit_forward(p, c.pixels.data(), c.batch, a);
    double mx = 0;
    for (float v : c.logits) mx = std::max(mx, double(std::fabs(v)));
    const double d = max_diff(a.logits, c.logits);
    EXPECT_LT(d, 0.02 * mx);  // measured: at most 0.0076 * mx
    EXPECT_GT(d, kTol / 100);
  }
}

// The constructor reads each parameter once, in layout order, whatever the form (a file is
// streamed that way).
TEST(PackedViT, ReadsEveryParameterOnceInOrder) {
  ViTConfig cfg = testing::tiny_config(4, 40, 16, 4);
  cfg.qk = {Form::Merged, Form::Factorized};
  cfg.ov = {Form::Factorized, Form::Merged};
  ViT m(cfg);
  testing::randomize(m, 3);
  std::vector<std::string> seen;
  const PackedViT p(m.cfg, Precision::F32, [&](const ParamInfo& q, float* dst) {
    seen.push_back(q.name);
    std::copy_n(m.p(q.offset), q.numel, dst);
  });
  std::vector<std::string> want;
  for (const auto& q : m.layout.params()) want.push_back(q.name);
  EXPECT_EQ(seen, want);
  EXPECT_GE(p.bytes(), m.params.size() * sizeof(float));

  std::vector<float> pixels(size_t(5) * 3 * 16 * 16);
  Rng rng(4);
  for (float& v : pixels) v = rng.normal();
  Activations a, b;
  vit_forward(m, pixels.data(), 5, a);
  vit_forward(p, pixels.data(), 5, b);
  for (int i = 0; i < 5 * cfg.num_classes; ++i) EXPECT_NEAR(a.logits[i], b.logits[i], 1e-5);
}

// One packing for every batch size, the same logits per image; and 1 vs 2 threads.
TEST(PackedViT, BatchSizesAndThreadsAgree) {
  ViTConfig cfg = testing::tiny_config(5, 40, 56, 4);  // 197 tokens, a width not a multiple of 16
  ViT m(cfg);
  testing::randomize(m, 5);
  const PackedViT p(m, Precision::F32);
  const int B = 9, in = 3 * 56 * 56, K = cfg.num_classes;
  ASSERT_EQ(cfg.tokens(), 197);
  std::vector<float> pixels(size_t(B) * in);
  Rng rng(6);
  for (float& v : pixels) v = rng.normal();
  Activations a;
  vit_forward(p, pixels.data(), B, a);
  const std::vector<float> full(a.logits, a.logits + B * K);
  for (int b : {0, 4, 8}) {
    vit_forward(p, pixels.data() + size_t(b) * in, 1, a);
    for (int k = 0; k < K; ++k) EXPECT_NEAR(a.logits[k], full[b * K + k], 1e-5);
  }
  const int threads = max_threads();
  set_threads(1);
  vit_forward(p, pixels.data(), B, a);
  set_threads(threads);
  for (int i = 0; i < B * K; ++i) EXPECT_NEAR(a.logits[i], full[i], 1e-5);
}

TEST(ViTForward, BatchRowsAreIndependentAndBuffersReused) {
  const auto e = manifest()[0];
  Case c = load_case(e);
  const long in = long(c.model.cfg.in_chans) * c.model.cfg.image_size * c.model.cfg.image_size;
  const int K = c.model.cfg.out_dim();
  Activations a;
  vit_forward(c.model, c.pixels.data(), c.batch, a);
  const std::vector<float> full(a.logits, a.logits + c.batch * K);
  for (int b = 0; b < c.batch; ++b) {  // same Activations, smaller batch: reshaped, not stale
    vit_forward(c.model, c.pixels.data() + b * in, 1, a);
    for (int k = 0; k < K; ++k) EXPECT_NEAR(a.logits[k], full[b * K + k], 1e-5);
  }
}

// Every buffer view starts on a cache line, whatever the sizes before it (17 tokens of width
// 12, 3 images: rows of 12 floats, statistics of 51); views packed back to back made each of
// a GEMM's output rows straddle two lines, a step ~5% slower. Distinct views, in order.
TEST(ViTBuffers, EveryViewStartsOnACacheLine) {
  const ViTConfig c = testing::tiny_config(3, 12, 16, 4);
  auto check = [](std::vector<const float*> views) {
    for (size_t i = 0; i < views.size(); ++i) {
      EXPECT_EQ(reinterpret_cast<uintptr_t>(views[i]) % 64, 0u) << "view " << i;
      if (i > 0) {
        EXPECT_LT(views[i - 1], views[i]) << "view " << i;
      }
    }
  };
  for (bool keep : {false, true}) {
    Activations a;
    a.ensure(c, 3, keep);
    std::vector<const float*> views{a.cols, a.patch_out, a.x0};
    for (int l = 0; l < (keep ? c.depth : 1); ++l) {
      const Activations::Layer& L = a.layers[l];
      views.insert(views.end(), {L.ln1, L.ln1_mean, L.ln1_rstd, L.in_proj, L.att, L.heads});
      if (keep) views.push_back(L.res_mid);
      views.insert(views.end(), {L.ln2, L.ln2_mean, L.ln2_rstd, L.fc1});
      if (keep) views.insert(views.end(), {L.gelu, L.res_out});
    }
    views.insert(views.end(), {a.cls_ln1, a.cls_norm, a.cls_mean, a.cls_rstd, a.logits});
    check(views);
  }
  BackwardBuffers w;
  w.ensure(c, 3);
  check({w.dres, w.dln, w.dP, w.dheads, w.dhidden, w.dpatch, w.dcls, w.dP_cls, w.scratch});
}

TEST(ViTForward, SavedModelReloadsBitIdentical) {
  Case c = load_case(manifest()[0]);
  const std::string path = ::testing::TempDir() + "/vitqk_saved.safetensors";
  io::save_model(path, c.model);
  const io::LoadedModel back = io::load_model(path);  // no --heads: the metadata says
  EXPECT_EQ(back.model.params, c.model.params);
  EXPECT_EQ(back.model.cfg.heads, c.model.cfg.heads);
  EXPECT_EQ(back.naming, io::Naming::Timm);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace vitqk

namespace vitqk {
namespace {

// 65026 tokens of width 16 in 16 heads: a 4 MB model whose attention scores need 270 GB per
// image. Refused before anything is allocated, with a message instead of the OOM killer.
TEST(ViTForward, BuffersLargerThanTheMachineAreRefused) {
  ViTConfig c = testing::tiny_config(16, 16, 255, 1);
  c.in_chans = 1, c.depth = 1, c.mlp_dim = 1, c.num_classes = 2;
  c.qk.assign(1, Form::Factorized), c.ov.assign(1, Form::Factorized);
  const ViT m(c);
  const std::vector<float> pixels(255 * 255);
  Activations a;
  try {
    vit_forward(m, pixels.data(), 1, a);
    FAIL() << "allocated the activations";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("more than this machine's"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace vitqk
