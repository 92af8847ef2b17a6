#include "ops/softmax.h"

#include <cmath>

#include "core/vmath.h"
#include "ops/reduce.h"

namespace vitqk {

void softmax_rows(float* x, int rows, int cols) {
  // exp, the costly part, runs once over the whole block: per row, rows of 50 tokens (ViT on
  // 28x28 images) would leave 2 of every 50 values to scalar code. Max and sum stay per row.
  for (int i = 0; i < rows; ++i) {
    float* r = x + (long)i * cols;
    const float mx = row_max(r, cols);
#pragma omp simd
    for (int j = 0; j < cols; ++j) r[j] -= mx;
  }
  const long n = long(rows) * cols;
#pragma omp simd
  for (long k = 0; k < n; ++k) x[k] = vmath::exp_nonpositive(x[k]);
  for (int i = 0; i < rows; ++i) {
    float* r = x + (long)i * cols;
    const float inv = 1.0f / row_sum(cols, [&](auto at) { return at(r); });
#pragma omp simd
    for (int j = 0; j < cols; ++j) r[j] *= inv;
  }
}

}  // namespace vitqk
