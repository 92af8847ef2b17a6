#include "ops/linear.h"

#include <algorithm>

#include "core/gemm.h"

namespace vitqk {

void linear_forward(float* y, const float* x, const LinearWeights& w, int M, Epilogue e) {
  if (w.packed) linear_gemm(y, x, *w.packed, w.b, M, e);
  else linear_gemm(y, x, w.W, w.b, M, w.K, w.N, e);
}

}  // namespace vitqk

namespace vitqk {

void sum_rows(float* db, const float* dy, int M, int N) {
  // Columns in parallel, rows in order: the summation order never depends on threads.
  constexpr int kBlock = 64;
#pragma omp parallel for schedule(static)
  for (int j0 = 0; j0 < N; j0 += kBlock) {
    const int j1 = std::min(N, j0 + kBlock);
    for (int i = 0; i < M; ++i) {
      const float* row = dy + (long)i * N;
      for (int j = j0; j < j1; ++j) db[j] += row[j];
    }
  }
}

void linear_backward(float* dx, float* dW, float* db, const float* dy, const float* x, const float* W, int M, int K,
                     int N) {
  if (dx) gemm(false, false, M, K, N, 1.0f, dy, N, W, K, 1.0f, dx, K);
  gemm(true, false, N, K, M, 1.0f, dy, N, x, K, 1.0f, dW, K);
  if (db) sum_rows(db, dy, M, N);
}

}  // namespace vitqk
