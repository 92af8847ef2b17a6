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
