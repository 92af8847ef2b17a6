#include "measure/attention_grid.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/rng.h"
#include "measure/timing.h"
#include "model/cost.h"
#include "ops/attention.h"
#include "ops/linear.h"

namespace vitqk {

namespace {

void fill_normal(std::vector<float>& v, Rng& rng, float std) {
  for (float& x : v) x = std * rng.normal();
}

// The parts of an attention layer whose cost depends on the form: input projection, the
// attention core and the output projection (layernorm and residual excluded), one image.
struct AttentionLayer {
  AttentionDims d;
  std::vector<float> x, w_in, b_in, w_out, b_out, P, att, heads, y;

  AttentionLayer(int D, int H, int n, Form qk, Rng& rng)
      : d{1, n, D, H, qk, Form::Factorized, n},
        x(size_t(n) * D),
        w_in(size_t(d.in_rows()) * D),
        b_in(d.in_rows()),
        w_out(size_t(D) * d.out_cols()),
        b_out(D),
        P(size_t(n) * d.in_rows()),
        att(size_t(H) * n * n),
        heads(size_t(n) * d.out_cols()),
        y(size_t(n) * D) {
    for (auto* v : {&x, &b_in, &b_out}) fill_normal(*v, rng, 1.0f);
    for (auto* v : {&w_in, &w_out}) fill_normal(*v, rng, 1.0f / std::sqrt(float(D)));
    // Scores of unit variance in both forms, as in a real model: q, k have unit entries and
    // are scaled by 1/sqrt(d_h); a merged p = x A_h^T + u_h meets x unscaled, so A_h needs
    // entries of std 1/D. (Scores D times too wide would make exp() underflow, a slow path
    // that has nothing to do with the form.)
    if (qk == Form::Merged)
      for (long i = 0; i < long(d.qk_rows()) * D; ++i) w_in[i] /= std::sqrt(float(D));
  }
  void run() {
    const int n = d.n, D = d.D;
    linear_forward(P.data(), x.data(), {w_in.data(), nullptr, b_in.data(), d.in_rows(), D}, n);
    attention_forward(d, P.data(), x.data(), att.data(), heads.data());
    linear_forward(y.data(), heads.data(), {w_out.data(), nullptr, b_out.data(), D, d.out_cols()}, n);
  }
};

double ms_per_run(AttentionLayer& l, int reps) {
  const auto t0 = Clock::now();
  for (int r = 0; r < reps; ++r) l.run();
  return ms_since(t0) / reps;
}

}  // namespace

std::vector<AttentionShape> attention_grid(bool quick) {
  if (quick)
    return {{64, 1, 197},  {256, 1, 197}, {768, 1, 197}, {768, 1, 50},   {512, 2, 197},
            {192, 3, 197}, {384, 6, 197}, {768, 12, 197}, {1024, 16, 197}, {768, 12, 50}};
  std::vector<AttentionShape> g;
  for (int n : {50, 197, 577})  // single-head layers: the only ones the cost model merges
    for (int D : {64, 128, 256, 384, 512, 768, 1024}) g.push_back({D, 1, n});
  for (int D : {128, 256, 512, 1024}) g.push_back({D, 2, 197});  // wide heads
  for (AttentionShape p : {AttentionShape{1024, 2, 50}, {1024, 2, 577}, {512, 2, 577}, {512, 4, 197}, {1024, 4, 197}})
    g.push_back(p);
  for (int n : {50, 197, 577})  // ViT-Ti/S/B (and L at 197): the standard shapes
    for (AttentionShape p : {AttentionShape{192, 3, n}, {384, 6, n}, {768, 12, n}}) g.push_back(p);
  g.push_back({1024, 16, 197});
  g.push_back({64, 4, 197});  // narrow heads (d_h = 16)
  return g;
}

AttentionTiming time_attention(const AttentionShape& s, double target_ms, int measurements, uint64_t seed) {
  Rng rng(seed);
  AttentionLayer a(s.D, s.H, s.n, Form::Factorized, rng), b(s.D, s.H, s.n, Form::Merged, rng);
  ms_per_run(a, 1), ms_per_run(b, 1);  // warm caches and page in the buffers
  const int ra = std::max(1, int(std::ceil(target_ms / ms_per_run(a, 1))));
  const int rb = std::max(1, int(std::ceil(target_ms / ms_per_run(b, 1))));
  std::vector<double> ta, tb;
  for (int i = 0; i < measurements; ++i) ta.push_back(ms_per_run(a, ra)), tb.push_back(ms_per_run(b, rb));
  AttentionTiming t{s, median(ta), median(tb), 0, 0, false, false};
  auto macs = [&](Form f) { return qk_cost(s.D, s.H, s.n, f).macs + ov_cost(s.D, s.H, s.n, Form::Factorized).macs; };
  t.predicted_ratio = double(macs(Form::Merged)) / double(macs(Form::Factorized));
  t.measured_ratio = t.merged_ms / t.factorized_ms;
  t.clear = std::max(t.measured_ratio, 1 / t.measured_ratio) > 1.10;
  t.right = (t.predicted_ratio < 1) == (t.measured_ratio < 1);
  return t;
}

nlohmann::json AttentionTiming::to_json() const {
  auto faster = [](double ratio) { return ratio < 1 ? "merged" : "factorized"; };
  return {{"D", s.D},
          {"H", s.H},
          {"n", s.n},
          {"factorized_ms", factorized_ms},
          {"merged_ms", merged_ms},
          {"measured_ratio", measured_ratio},
          {"predicted_ratio", predicted_ratio},
          {"predicted_faster", faster(predicted_ratio)},
          {"measured_faster", faster(measured_ratio)},
          {"differ_by_10pct", clear},
          {"right", right}};
}

GridScore score(const std::vector<AttentionTiming>& ts) {
  GridScore g;
  for (const AttentionTiming& t : ts)
    if (t.clear) {
      ++g.decided, g.right += t.right;
      if (!t.right) g.wrong.push_back(cat("D=", t.s.D, " H=", t.s.H, " n=", t.s.n));
    }
  return g;
}

}  // namespace vitqk
