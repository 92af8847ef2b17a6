// The attention core (scores, softmax, weighted values; projections excluded) on the ViT
// shapes, both query-key forms.
#include "ops/attention.h"

#include "limits.h"

namespace vitqk::micro {
namespace {

void BM_Attention(benchmark::State& state) {
  const int B = int(state.range(0)), D = int(state.range(1)), H = int(state.range(2)), n = 197;
  const Form qk = state.range(3) ? Form::Merged : Form::Factorized;
  const AttentionDims d{B, n, D, H, qk, Form::Factorized, n};
  const auto P = random_floats(size_t(B) * n * d.in_rows(), 1, 0.3f), x = random_floats(size_t(B) * n * D, 2, 0.3f);
  std::vector<float> att(size_t(B) * H * n * n), out(size_t(B) * n * d.out_cols());
  Stopwatch t;
  for (auto _ : state) attention_forward(d, P.data(), x.data(), att.data(), out.data());
  // Two products per head: scores n x n x q_width, outputs n x v_width x n.
  report_flops(state, t, 2.0 * B * H * double(n) * n * (d.q_width() + d.v_width()));
}
BENCHMARK(BM_Attention)
    ->ArgNames({"B", "D", "H", "merged"})
    ->Args({1, 768, 12, 0})
    ->Args({8, 768, 12, 0})
    ->Args({1, 192, 3, 0})
    ->Args({1, 768, 1, 0})
    ->Args({1, 768, 1, 1})
    ->UseRealTime();

}  // namespace
}  // namespace vitqk::micro
