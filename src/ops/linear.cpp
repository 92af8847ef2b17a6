#include "ops/linear.h"

#include <algorithm>

#include "core/gemm.h"

namespace vitqk {

void linear_forward(float* y, const float* x, const float* W, const float* b, int M, int K, int N,
                    bool accumulate) {
  // Seed y with the bias (or add it) so the GEMM accumulates onto it: one pass over y fewer.
  if (b) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < M; ++i) {
      float* row = y + (long)i * N;
      if (accumulate)
        for (int j = 0; j < N; ++j) row[j] += b[j];
      else
        std::copy(b, b + N, row);
    }
  }
  gemm(false, true, M, N, K, 1.0f, x, K, W, K, (b || accumulate) ? 1.0f : 0.0f, y, N);
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
