// vit_backward against central finite differences, every parameter tensor, all four form
// combinations, non-zero biases, label smoothing on.
#include <gtest/gtest.h>

#include "core/threads.h"
#include "model/vit.h"
#include "ops/cross_entropy.h"
#include "testing.h"

namespace vitqk {
namespace {

struct Problem {
  ViT m;
  std::vector<float> pixels;
  std::vector<int32_t> labels;
  int B;
};

double loss_of(const Problem& p, Activations& a) {
  vit_forward(p.m, p.pixels.data(), p.B, a);
  return cross_entropy(a.logits, p.labels.data(), p.B, p.m.cfg.num_classes, 0.1f, nullptr);
}

void check_gradients(Form qk, Form ov, int heads, int depth = 2) {
  ViTConfig c = testing::tiny_config(heads, 12, 8, 4);
  c.depth = depth;
  c.qk.assign(c.depth, qk);
  c.ov.assign(c.depth, ov);
  Problem p{ViT(c), {}, {}, 3};
  testing::randomize(p.m, 42);
  Rng rng(3);
  p.pixels.resize(size_t(p.B) * 3 * 8 * 8);
  for (float& v : p.pixels) v = rng.normal();
  p.labels = {1, 4, 6};

  Activations a;
  a.keep_all = true;
  loss_of(p, a);
  std::vector<float> dlogits(size_t(p.B) * c.num_classes);
  cross_entropy(a.logits, p.labels.data(), p.B, c.num_classes, 0.1f, dlogits.data());
  std::vector<float> grads(p.m.params.size(), 0.0f);
  BackwardBuffers w;
  vit_backward(p.m, dlogits.data(), a, grads.data(), w);
  // Again with the buffers the first pass left behind: activation gradients are overwritten,
  // never added to what a previous pass (or layer) left there.
  std::vector<float> again(grads.size(), 0.0f);
  vit_backward(p.m, dlogits.data(), a, again.data(), w);
  EXPECT_EQ(grads, again) << "a second backward pass through the same buffers differs";

  // Float32 forward passes: eps 1e-2 keeps rounding (~1e-7 * loss / eps) well below the
  // truncation error (~eps^2 * third derivative), both far below a wrong term.
  const float eps = 1e-2f;
  for (const auto& info : p.m.layout.params()) {
    double worst = 0;
    for (int t = 0; t < 6; ++t) {
      const size_t i = info.offset + rng.below(uint32_t(info.numel));
      const float saved = p.m.params[i];
      p.m.params[i] = saved + eps;
      const double up = loss_of(p, a);
      p.m.params[i] = saved - eps;
      const double down = loss_of(p, a);
      p.m.params[i] = saved;
      const double fd = (up - down) / (2 * eps);
      const double err = std::fabs(fd - grads[i]) / (1e-3 + std::fabs(fd) + std::fabs(grads[i]));
      worst = std::max(worst, err);
    }
    EXPECT_LT(worst, 2e-2) << info.name << " (" << form_name(qk) << "/" << form_name(ov) << ", " << heads
                           << " heads)";
  }
}

TEST(ViTBackward, FactorizedMatchesFiniteDifferences) { check_gradients(Form::Factorized, Form::Factorized, 3); }
TEST(ViTBackward, MergedQkMatchesFiniteDifferences) { check_gradients(Form::Merged, Form::Factorized, 3); }
TEST(ViTBackward, MergedOvMatchesFiniteDifferences) { check_gradients(Form::Factorized, Form::Merged, 2); }
TEST(ViTBackward, BothMergedMatchFiniteDifferences) { check_gradients(Form::Merged, Form::Merged, 1); }
// One block: the last block, which computes only the class token's queries and outputs, is
// also the first, whose input gradient flows into the patch embedding.
TEST(ViTBackward, OneBlockMatchesFiniteDifferences) {
  check_gradients(Form::Factorized, Form::Factorized, 3, 1);
  check_gradients(Form::Merged, Form::Factorized, 3, 1);
}

// Training runs a slot's images a few at a time (train/trainer.cpp): the parameter gradients
// and the loss continue their sums from pass to pass, so passes must give the bits of one pass
// over the slot. Inside a parallel region, as training calls it (gemm() picks its kernel by that).
TEST(ViTBackward, PassesOfASlotGiveTheBitsOfOnePass) {
  for (Form qk : {Form::Factorized, Form::Merged})
    for (Form ov : {Form::Factorized, Form::Merged}) {
      SCOPED_TRACE(::testing::Message() << form_name(qk) << "/" << form_name(ov));
      ViTConfig c = testing::tiny_config(2, 12, 8, 4);
      c.qk.assign(c.depth, qk);
      c.ov.assign(c.depth, ov);
      ViT m(c);
      testing::randomize(m, 7);
      const int B = 6, K = c.num_classes;
      const size_t image = size_t(3) * 8 * 8;
      Rng rng(5);
      std::vector<float> pixels(B * image);
      for (float& v : pixels) v = rng.normal();
      const std::vector<int32_t> labels = {1, 4, 6, 0, 5, 4};
      auto run = [&](int per_pass, std::vector<float>& grads, double& loss, int& right) {
        grads.assign(m.params.size(), 0.0f);
        loss = 0, right = 0;
        parallel_tasks(1, [&](int, int) {
          Activations a;
          a.keep_all = true;
          BackwardBuffers w;
          std::vector<float> dlogits(size_t(per_pass) * K);
          for (int i = 0; i < B; i += per_pass) {
            vit_forward(m, pixels.data() + i * image, per_pass, a);
            cross_entropy_slice(a.logits, labels.data() + i, per_pass, B, K, 0.1f, dlogits.data(), &loss, &right);
            vit_backward(m, dlogits.data(), a, grads.data(), w);
          }
        });
      };
      std::vector<float> whole, passes;
      double whole_loss, passes_loss;
      int whole_right, passes_right;
      run(B, whole, whole_loss, whole_right);
      for (int per_pass : {1, 2, 3}) {
        run(per_pass, passes, passes_loss, passes_right);
        EXPECT_EQ(passes_loss, whole_loss) << per_pass << " images per pass";
        EXPECT_EQ(passes_right, whole_right);
        size_t differ = 0;
        for (size_t i = 0; i < whole.size(); ++i) differ += whole[i] != passes[i];
        EXPECT_EQ(differ, 0u) << "of " << whole.size() << " gradients differ, " << per_pass << " images per pass";
      }
      // and the slices' sum is cross_entropy's mean loss over the slot, times B
      Activations a;
      vit_forward(m, pixels.data(), B, a);
      EXPECT_NEAR(whole_loss / B, cross_entropy(a.logits, labels.data(), B, K, 0.1f, nullptr), 1e-6);
    }
}

TEST(CrossEntropy, MatchesHandComputedValues) {
  // logits (0, ln 2, ln 3): p = (1/6, 2/6, 3/6); label 2, smoothing 0 -> loss = ln 2.
  const float z[3] = {0.0f, std::log(2.0f), std::log(3.0f)};
  const int32_t y = 2;
  float dz[3];
  int correct = 0;
  EXPECT_NEAR(cross_entropy(z, &y, 1, 3, 0.0f, dz, &correct), std::log(2.0), 1e-6);
  EXPECT_EQ(correct, 1);
  EXPECT_NEAR(dz[0], 1.0 / 6, 1e-6);
  EXPECT_NEAR(dz[2], 0.5 - 1.0, 1e-6);
  // smoothing 0.3: q = (0.1, 0.1, 0.8).
  const double want = -(0.1 * std::log(1.0 / 6) + 0.1 * std::log(2.0 / 6) + 0.8 * std::log(0.5));
  EXPECT_NEAR(cross_entropy(z, &y, 1, 3, 0.3f, dz), want, 1e-6);
  EXPECT_NEAR(dz[1], 2.0 / 6 - 0.1, 1e-6);
}

}  // namespace
}  // namespace vitqk
