#include "ops/gelu.h"

#include <cmath>

namespace vitqk {

void gelu_forward(float* y, const float* x, long n) {
  constexpr float inv_sqrt2 = 0.70710678118654752440f;
#pragma omp parallel for schedule(static)
  for (long i = 0; i < n; ++i) y[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * inv_sqrt2));
}

}  // namespace vitqk

namespace vitqk {

void gelu_backward(float* dx, const float* x, const float* dy, long n) {
  constexpr float inv_sqrt2 = 0.70710678118654752440f, inv_sqrt_2pi = 0.39894228040143267794f;
#pragma omp parallel for schedule(static)
  for (long i = 0; i < n; ++i) {
    const float cdf = 0.5f * (1.0f + std::erf(x[i] * inv_sqrt2));
    const float pdf = inv_sqrt_2pi * std::exp(-0.5f * x[i] * x[i]);
    dx[i] = dy[i] * (cdf + x[i] * pdf);
  }
}

}  // namespace vitqk
