#include "ops/softmax.h"

#include <cmath>

#include "core/vmath.h"

namespace vitqk {

void softmax_rows(float* x, int rows, int cols) {
  // exp, the costly part, runs once over the whole block: per row, rows of 50 tokens (ViT on
  // 28x28 images) would leave 2 of every 50 values to scalar code. Max and sum stay per row.
  for (int i = 0; i < rows; ++i) {
    float* r = x + (long)i * cols;
    float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
    for (int j = 0; j < cols; ++j) mx = r[j] > mx ? r[j] : mx;
#pragma omp simd
    for (int j = 0; j < cols; ++j) r[j] -= mx;
  }
  const long n = long(rows) * cols;
#pragma omp simd
  for (long k = 0; k < n; ++k) x[k] = vmath::exp_nonpositive(x[k]);
  for (int i = 0; i < rows; ++i) {
    float* r = x + (long)i * cols;
    float s = 0;
#pragma omp simd reduction(+ : s)
    for (int j = 0; j < cols; ++j) s += r[j];
    const float inv = 1.0f / s;
#pragma omp simd
    for (int j = 0; j < cols; ++j) r[j] *= inv;
  }
}

}  // namespace vitqk
