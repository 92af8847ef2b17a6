#include "ops/layernorm.h"

#include <cmath>

#include "core/threads.h"
#include "ops/reduce.h"

namespace vitqk {

void layernorm_forward(float* y, float* mean, float* rstd, const float* x, const float* w, const float* b,
                       int N, int C, float eps) {
#pragma omp parallel for schedule(static) if (long(N) * C >= kParallelMin)
  for (int i = 0; i < N; ++i) {
    const float* xi = x + (long)i * C;
    float* yi = y + (long)i * C;
    // Two passes: the variance of centred values, so a large mean costs no precision. Vector
    // partial sums (16 lanes) keep float rounding to a few ulps at these widths.
    const float mf = row_sum(C, [&](auto at) { return at(xi); }) / float(C);
    const float v = row_sum(C, [&](auto at) {
      const auto d = at(xi) - mf;
      return d * d;
    });
    const float r = 1.0f / std::sqrt(v / float(C) + eps);
#pragma omp simd
    for (int c = 0; c < C; ++c) yi[c] = (xi[c] - mf) * r * w[c] + b[c];
    if (mean) mean[i] = mf;
    if (rstd) rstd[i] = r;
  }
}

}  // namespace vitqk

namespace vitqk {

void layernorm_backward(float* dx, float* dw, float* db, const float* dy, const float* x, const float* mean,
                        const float* rstd, const float* w, int N, int C) {
  // dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * w.
#pragma omp parallel for schedule(static) if (long(N) * C >= kParallelMin)
  for (int i = 0; i < N; ++i) {
    const float* dyi = dy + (long)i * C;
    const float* xi = x + (long)i * C;
    float* dxi = dx + (long)i * C;
    const float m = mean[i], r = rstd[i];
    // Float sums over 16 lanes, as PyTorch's CPU kernel (double sums were twice the work).
    const float sg = row_sum(C, [&](auto at) { return at(dyi) * at(w); });
    const float sgx = row_sum(C, [&](auto at) { return at(dyi) * at(w) * ((at(xi) - m) * r); });
    const float mg = sg / float(C), mgx = sgx / float(C);
#pragma omp simd
    for (int c = 0; c < C; ++c) {
      const float xhat = (xi[c] - m) * r;
      dxi[c] += r * (dyi[c] * w[c] - mg - xhat * mgx);
    }
  }
  // Parameter gradients: columns in parallel, rows in order (thread-count independent bits).
  column_sums(dw, N, C, [&](auto acc, int i, auto at) {
    return acc + at(dy + (long)i * C) * (at(x + (long)i * C) - mean[i]) * rstd[i];
  });
  column_sums(db, N, C, [&](auto acc, int i, auto at) { return acc + at(dy + (long)i * C); });
}

}  // namespace vitqk
