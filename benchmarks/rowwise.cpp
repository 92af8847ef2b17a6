// One-pass row kernels on ViT activations: softmax over attention scores and LayerNorm
// over tokens, measured as bytes moved against the speed of copying as many.
#include "limits.h"
#include "ops/gelu.h"
#include "ops/layernorm.h"
#include "ops/softmax.h"

namespace vitqk::micro {
namespace {

void BM_Softmax(benchmark::State& state) {
  const int rows = int(state.range(0)), cols = int(state.range(1));
  std::vector<float> x = random_floats(size_t(rows) * cols, 1, 3.0f);
  Stopwatch t;
  for (auto _ : state) softmax_rows(x.data(), rows, cols);  // probabilities are valid scores too
  report_bytes(state, t, 2.0 * sizeof(float) * rows * cols);
}
BENCHMARK(BM_Softmax)->ArgNames({"rows", "cols"})->Args({197, 197})->Args({50, 50});

void BM_LayerNorm(benchmark::State& state) {
  const int N = int(state.range(0)), C = int(state.range(1));
  const auto x = random_floats(size_t(N) * C, 1), w = random_floats(C, 2), b = random_floats(C, 3);
  std::vector<float> y(size_t(N) * C), mean(N), rstd(N);
  Stopwatch t;
  for (auto _ : state) layernorm_forward(y.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), N, C, 1e-6f);
  report_bytes(state, t, 2.0 * sizeof(float) * N * C);
}
BENCHMARK(BM_LayerNorm)->ArgNames({"N", "C"})->Args({197, 768})->Args({1576, 768})->Args({6400, 64})->UseRealTime();

void BM_Gelu(benchmark::State& state) {
  const long n = state.range(0);
  const auto x = random_floats(n, 1);
  std::vector<float> y(n);
  Stopwatch t;
  for (auto _ : state) gelu_forward(y.data(), x.data(), n);
  report_bytes(state, t, 2.0 * sizeof(float) * n);
}
BENCHMARK(BM_Gelu)->ArgName("n")->Arg(197 * 3072)->Arg(6400 * 128)->UseRealTime();

}  // namespace
}  // namespace vitqk::micro
