#include "ops/softmax.h"

#include <cmath>

#include "core/intrinsics.h"
#include "core/vmath.h"
#include "ops/reduce.h"

namespace vitqk {

namespace {
// The largest of r[0..n), NaNs skipped. The maximum does not depend on the order in which it is
// taken, so this is free to beat `omp simd reduction(max)`, which kept its lanes in memory and
// took them one at a time: 40% of a 50x50 softmax.
float row_max(const float* r, int n) {
#ifdef __AVX512F__
  __m512 m = _mm512_set1_ps(-INFINITY);
  int j = 0;
  for (; j + 16 <= n; j += 16) m = _mm512_max_ps(_mm512_loadu_ps(r + j), m);  // a NaN yields m
  if (j < n) m = _mm512_max_ps(_mm512_mask_loadu_ps(m, __mmask16((1u << (n - j)) - 1), r + j), m);
  return _mm512_reduce_max_ps(m);
#else
  float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
  for (int j = 0; j < n; ++j) mx = r[j] > mx ? r[j] : mx;
  return mx;
#endif
}
}  // namespace

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
