#include "ops/gelu.h"

#include <cmath>

namespace vitqk {

void gelu_forward(float* y, const float* x, long n) {
  constexpr float inv_sqrt2 = 0.70710678118654752440f;
#pragma omp parallel for schedule(static)
  for (long i = 0; i < n; ++i) y[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * inv_sqrt2));
}

}  // namespace vitqk
