// Logits, loss and every parameter's gradient against PyTorch, in every form combination:
// fixtures written by tools/gen_grad_fixtures.py (a plain PyTorch ViT in vitqk's layout,
// anchored there to torchvision's VisionTransformer, run in float64 with autograd on the
// float32 weights stored in the fixture; cross-entropy with label_smoothing=0.1).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "io/model_file.h"
#include "io/safetensors.h"
#include "model/vit.h"
#include "ops/cross_entropy.h"
#include "testing.h"

namespace vitqk {
namespace {

using testing::fixture;

// Tolerances. vitqk computes in float32, the reference in float64 from the same float32
// weights, so the only difference should be float32 rounding: ~1e-7 relative per op, summed
// over GEMMs of at most a few hundred terms and two layers, i.e. ~1e-6 of a tensor's scale.
// PyTorch's own float32 run of the same models lands at 1e-7..5e-6 of each gradient tensor's
// largest entry (manifest.json: torch_f32_grad_rel_err, torch_f32_logits_rel_err). So each
// tensor is checked as
//     |value - ref| <= kRel * max|ref over that tensor| + kAbs
// with kRel = 1e-4 (20x margin over PyTorch's float32 worst case, room for summation order)
// and kAbs = 1e-6 for tensors whose reference is zero up to rounding (the key bias of a
// factorized layer: its gradient vanishes exactly, the softmax rows being shift-invariant).
// vitqk itself lands at <= 2e-6 (printed per case below): a 50x margin. Bugs move things by
// far more; each of these hand-made mutations of the C++ fails the test (ratio to the
// tolerance in brackets): softmax-backward correction dropped (thousands); one element of
// the attention input bias skipped in the forward pass (logits 14x..270x); one element of the
// output-projection bias gradient zeroed (500x..3000x), or of the input bias gradient
// (150x..8000x); the merged-key or merged-value gradient into x dropped (thousands); even
// GELU's tanh approximation in place of erf (logits 1.6x..2.6x).
constexpr double kRel = 1e-4, kAbs = 1e-6;

nlohmann::json manifest() {
  std::ifstream f(fixture("grads/manifest.json"));
  return nlohmann::json::parse(f);
}

std::vector<Form> forms(const nlohmann::json& a) {
  std::vector<Form> out;
  for (const auto& s : a) out.push_back(parse_form(s.get<std::string>()));
  return out;
}

struct Error {
  double ratio;  // max |value - ref| / (kRel * max|ref| + kAbs): <= 1 passes
  double scale;  // max |ref|
  double diff;   // max |value - ref|
};
Error compare(const float* value, const std::vector<float>& ref) {
  double scale = 0, diff = 0;
  for (float r : ref) scale = std::max(scale, double(std::fabs(r)));
  for (size_t i = 0; i < ref.size(); ++i) diff = std::max(diff, std::fabs(double(value[i]) - double(ref[i])));
  return {diff / (kRel * scale + kAbs), scale, diff};
}

TEST(GradFixture, LogitsLossAndEveryGradientMatchPyTorch) {
  const auto cases = manifest();
  ASSERT_GE(cases.size(), 4u);
  std::set<std::pair<Form, Form>> combos;
  for (const auto& e : cases) {
    const std::string name = e["name"].get<std::string>();
    SCOPED_TRACE(name);
    const std::string model_path = fixture("grads/" + e["file"].get<std::string>());
    const io::LoadedModel lm = io::load_model(model_path);
    const ViT& m = lm.model;
    const ViTConfig& c = m.cfg;
    ASSERT_EQ(c.qk, forms(e["qk"]));
    ASSERT_EQ(c.ov, forms(e["ov"]));
    ASSERT_EQ(c.dim, e["dim"].get<int>());
    ASSERT_EQ(c.heads, e["heads"].get<int>());
    ASSERT_EQ(c.num_classes, e["num_classes"].get<int>());
    for (int l = 0; l < c.depth; ++l) combos.insert({c.qk[l], c.ov[l]});
    {  // The script writes the config exactly as config_to_json does.
      const io::SafeTensorsReader r(model_path);
      EXPECT_EQ(r.metadata().at("vitqk"), config_to_json(c).dump());
      ASSERT_EQ(r.entries().size(), m.layout.params().size());
      for (size_t i = 0; i < r.entries().size(); ++i) EXPECT_EQ(r.entries()[i].name, m.layout.params()[i].name);
    }

    const io::SafeTensorsReader io(fixture("grads/" + e["io"].get<std::string>()));
    auto get = [&](const std::string& key) {
      const auto* entry = io.find(key);
      if (!entry) ADD_FAILURE() << "fixture lacks " << key;
      return entry ? io.read(*entry) : std::vector<float>();
    };
    const std::vector<float> pixels = get("pixel_values"), label_f = get("labels"), ref_logits = get("logits"),
                             ref_loss = get("loss");
    const int B = int(io.find("pixel_values")->shape[0]), K = c.num_classes;
    ASSERT_EQ(pixels.size(), size_t(B) * c.in_chans * c.image_size * c.image_size);
    ASSERT_EQ(label_f.size(), size_t(B));
    ASSERT_EQ(ref_logits.size(), size_t(B) * K);
    std::vector<int32_t> labels;
    for (float v : label_f) labels.push_back(int32_t(v));

    Activations a;
    a.keep_all = true;
    vit_forward(m, pixels.data(), B, a);
    std::vector<float> dlogits(size_t(B) * K);
    const double loss = cross_entropy(a.logits, labels.data(), B, K, 0.1f, dlogits.data());
    std::vector<float> grads(m.params.size(), 0.0f);
    BackwardBuffers w;
    vit_backward(m, dlogits.data(), a, grads.data(), w);

    // For the summary: the worst relative error over tensors of non-vanishing reference, and
    // the worst absolute error over those whose reference is zero up to rounding.
    double worst_rel = 0, worst_zero = 0;
    auto note = [&](const Error& err) {
      if (err.scale > 1e-9) worst_rel = std::max(worst_rel, err.diff / err.scale);
      else worst_zero = std::max(worst_zero, err.diff);
    };
    const Error le = compare(a.logits, ref_logits);
    EXPECT_LE(le.ratio, 1.0) << "logits: max |z - ref| = " << le.diff << ", max |ref| = " << le.scale;
    note(le);
    EXPECT_NEAR(loss, ref_loss.at(0), kRel * std::fabs(ref_loss.at(0)) + kAbs);

    size_t checked = 0;
    for (const ParamInfo& p : m.layout.params()) {
      const std::vector<float> ref = get("grad." + p.name);
      ASSERT_EQ(ref.size(), p.numel) << p.name;
      const Error ge = compare(grads.data() + p.offset, ref);
      EXPECT_LE(ge.ratio, 1.0) << "gradient of " << p.name << ": max |g - ref| = " << ge.diff
                               << ", max |ref| = " << ge.scale;
      note(ge);
      ++checked;
    }
    size_t grad_tensors = 0;  // and no gradient in the fixture that the layout lacks
    for (const auto& entry : io.entries()) grad_tensors += entry.name.rfind("grad.", 0) == 0;
    EXPECT_EQ(grad_tensors, checked);
    RecordProperty("worst_rel_err_" + name, std::to_string(worst_rel));
    std::printf("[ grads    ] %-9s loss %.8f (ref %.8f); logits and %zu gradients: worst relative error %.2e, "
                "worst absolute error where the reference vanishes %.1e\n",
                name.c_str(), loss, double(ref_loss.at(0)), checked, worst_rel, worst_zero);
  }
  // Every combination of forms is covered by some layer.
  EXPECT_EQ(combos.size(), 4u);
}

}  // namespace
}  // namespace vitqk
