// The linear layers' GEMM on ViT shapes (rows = batch x 197 tokens): packed fp32 and bf16
// weights, plain fp32 weights (training), and the general gemm() of attention and backward.
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>

#include "core/gemm.h"
#include "core/small_gemm.h"
#include "limits.h"

namespace vitqk::micro {
namespace {

void linear_args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"M", "K", "N"});
  for (int M : {197, 1576})  // batch 1 and 8
    for (auto [K, N] : {std::pair{768, 2304}, {768, 768}, {768, 3072}, {3072, 768}}) b->Args({M, K, N});  // ViT-B
  for (auto [K, N] : {std::pair{192, 576}, {192, 768}, {768, 192}}) b->Args({197, K, N});                  // ViT-Ti
  b->Args({6400, 64, 192});  // the default Fashion-MNIST model, training batch
  b->UseRealTime();
}

void BM_LinearPacked(benchmark::State& state, Precision p) {
  const int M = int(state.range(0)), K = int(state.range(1)), N = int(state.range(2));
  const auto x = random_floats(size_t(M) * K, 1), W = random_floats(size_t(N) * K, 2, 0.05f), b = random_floats(N, 3);
  std::vector<float> y(size_t(M) * N);
  const PackedWeights P(W.data(), N, K, p);
  Stopwatch t;
  for (auto _ : state) linear_gemm(y.data(), x.data(), P, b.data(), M, Epilogue::None);
  report_flops(state, t, 2.0 * M * N * K);
}
BENCHMARK_CAPTURE(BM_LinearPacked, fp32, Precision::F32)->Apply(linear_args);
BENCHMARK_CAPTURE(BM_LinearPacked, bf16, Precision::BF16)->Apply(linear_args);

void BM_LinearPlain(benchmark::State& state) {
  const int M = int(state.range(0)), K = int(state.range(1)), N = int(state.range(2));
  const auto x = random_floats(size_t(M) * K, 1), W = random_floats(size_t(N) * K, 2, 0.05f), b = random_floats(N, 3);
  std::vector<float> y(size_t(M) * N);
  Stopwatch t;
  for (auto _ : state) linear_gemm(y.data(), x.data(), W.data(), b.data(), M, K, N, Epilogue::None);
  report_flops(state, t, 2.0 * M * N * K);
}
BENCHMARK(BM_LinearPlain)->Apply(linear_args);

// Fused epilogues against the plain product: GELU (fc1) and the residual sum (fc2).
void BM_LinearEpilogue(benchmark::State& state, Epilogue e) {
  const int M = 197, K = e == Epilogue::Gelu ? 768 : 3072, N = e == Epilogue::Gelu ? 3072 : 768;
  const auto x = random_floats(size_t(M) * K, 1), W = random_floats(size_t(N) * K, 2, 0.05f), b = random_floats(N, 3);
  std::vector<float> y(size_t(M) * N);
  const PackedWeights P(W.data(), N, K, Precision::F32);
  Stopwatch t;
  for (auto _ : state) linear_gemm(y.data(), x.data(), P, b.data(), M, e);
  report_flops(state, t, 2.0 * M * N * K);
}
BENCHMARK_CAPTURE(BM_LinearEpilogue, gelu, Epilogue::Gelu)->UseRealTime();
BENCHMARK_CAPTURE(BM_LinearEpilogue, residual, Epilogue::Residual)->UseRealTime();

// gemm() in the transposes training uses: dx = dy W (NN) and dW += dy^T x (TN).
void BM_GemmBackward(benchmark::State& state) {
  const bool ta = state.range(0);
  const int M = 6400, K = 64, N = 192;  // Fashion-MNIST model, qkv projection
  const auto dy = random_floats(size_t(M) * N, 1), x = random_floats(size_t(M) * K, 2), W = random_floats(size_t(N) * K, 3);
  std::vector<float> out(size_t(M) * K);
  Stopwatch t;
  for (auto _ : state) {
    if (ta) gemm(true, false, N, K, M, 1.0f, dy.data(), N, x.data(), K, 1.0f, out.data(), K);  // dW
    else gemm(false, false, M, K, N, 1.0f, dy.data(), N, W.data(), K, 1.0f, out.data(), K);    // dx
  }
  report_flops(state, t, 2.0 * M * N * K);
}
BENCHMARK(BM_GemmBackward)->ArgName("dW")->Arg(0)->Arg(1)->UseRealTime();

// One attention head's products, oneDNN's sgemm against the register kernel (small_gemm.h),
// each thread on its own head as attention runs them. Shapes: {trans_a, trans_b, M, N, K}.
constexpr int kHeadShapes[][5] = {
    {0, 1, 50, 50, 16},    // scores Q K^T, default training model
    {0, 0, 50, 16, 50},    // A V, and dQ = dS K
    {1, 0, 50, 16, 50},    // dV = A^T dO, dK = dS^T Q
    {0, 1, 50, 50, 64},    // merged scores (q_width = D)
    {0, 1, 197, 197, 64},  // ViT-B scores
    {0, 0, 197, 64, 197},  // ViT-B A V
    {1, 0, 197, 64, 197},  // ViT-B dV = A^T dO
    {0, 1, 50, 197, 64},   // ViT-Ti inference: a quarter of a head's query rows, scores
    {0, 0, 50, 64, 197},   // and A V
};

void BM_HeadGemm(benchmark::State& state) {
  const bool kernel = state.range(0);
  const int* s = kHeadShapes[state.range(1)];
  const bool ta = s[0], tb = s[1];
  const int M = s[2], N = s[3], K = s[4], threads = omp_get_max_threads(), reps = 64;
  const auto A = random_floats(size_t(M) * K, 1), B = random_floats(size_t(K) * N, 2);
  std::vector<float> C(size_t(threads) * M * N);
  const int lda = ta ? M : K, ldb = tb ? K : N;
  Stopwatch t;
  for (auto _ : state) {
#pragma omp parallel
    for (int r = 0; r < reps; ++r) {
      float* c = C.data() + size_t(omp_get_thread_num()) * M * N;
      if (!kernel || !small_gemm(ta, tb, M, N, K, 1.0f, A.data(), lda, B.data(), ldb, 0.0f, c, N))
        dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, 1.0f, A.data(), lda, B.data(), ldb, 0.0f, c, N);
    }
  }
  report_flops(state, t, 2.0 * M * N * K * threads * reps);
}
BENCHMARK(BM_HeadGemm)->ArgNames({"kernel", "shape"})->ArgsProduct({{0, 1}, benchmark::CreateDenseRange(0, std::size(kHeadShapes) - 1, 1)})->UseRealTime();

}  // namespace
}  // namespace vitqk::micro
