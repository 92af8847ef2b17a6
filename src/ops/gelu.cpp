#include "ops/gelu.h"

#include "core/threads.h"
#include "core/vmath.h"

namespace vitqk {

void gelu_forward(float* y, const float* x, long n) {
#pragma omp parallel for simd schedule(static) if (parallel : n >= kParallelMin)
  for (long i = 0; i < n; ++i) y[i] = x[i] * vmath::normal_cdf(x[i]);
}

void gelu_backward(float* dx, const float* x, const float* dy, long n) {
  constexpr float inv_sqrt_2pi = 0.39894228040143267794f;
#pragma omp parallel for simd schedule(static) if (parallel : n >= kParallelMin)
  for (long i = 0; i < n; ++i) {
    const float pdf = inv_sqrt_2pi * vmath::exp(-0.5f * x[i] * x[i]);
    dx[i] = dy[i] * (vmath::normal_cdf(x[i]) + x[i] * pdf);
  }
}

}  // namespace vitqk
