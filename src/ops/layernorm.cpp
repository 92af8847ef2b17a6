#include "ops/layernorm.h"

#include <cmath>

namespace vitqk {

void layernorm_forward(float* y, float* mean, float* rstd, const float* x, const float* w, const float* b,
                       int N, int C, float eps) {
#pragma omp parallel for schedule(static)
  for (int i = 0; i < N; ++i) {
    const float* xi = x + (long)i * C;
    float* yi = y + (long)i * C;
    // Two passes in double: the variance of centred values, so large means cost no precision.
    double s = 0;
    for (int c = 0; c < C; ++c) s += xi[c];
    const double m = s / C;
    double v = 0;
    for (int c = 0; c < C; ++c) v += (xi[c] - m) * (xi[c] - m);
    const float r = float(1.0 / std::sqrt(v / C + eps));
    const float mf = float(m);
    for (int c = 0; c < C; ++c) yi[c] = (xi[c] - mf) * r * w[c] + b[c];
    if (mean) mean[i] = mf;
    if (rstd) rstd[i] = r;
  }
}

}  // namespace vitqk
