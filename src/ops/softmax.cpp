#include "ops/softmax.h"

#include <cmath>

#include "core/vmath.h"

namespace vitqk {

void softmax_rows(float* x, int rows, int cols) {
  for (int i = 0; i < rows; ++i) {
    float* r = x + (long)i * cols;
    float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
    for (int j = 0; j < cols; ++j) mx = r[j] > mx ? r[j] : mx;
    float s = 0;
#pragma omp simd reduction(+ : s)
    for (int j = 0; j < cols; ++j) {
      r[j] = vmath::exp(r[j] - mx);
      s += r[j];
    }
    const float inv = 1.0f / s;
#pragma omp simd
    for (int j = 0; j < cols; ++j) r[j] *= inv;
  }
}

}  // namespace vitqk
