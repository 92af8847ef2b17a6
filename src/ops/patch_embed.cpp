#include "ops/patch_embed.h"

#include <cstring>

#include "core/threads.h"
#include "ops/linear.h"

namespace vitqk {

void im2col(const PatchDims& d, const float* pixels, float* cols) {
  const int g = d.grid(), P = d.patch, S = d.image;
#pragma omp parallel for schedule(static) if (long(d.B) * d.patches() * d.patch_dim() >= kParallelMin)
  for (int bp = 0; bp < d.B * d.patches(); ++bp) {
    const int b = bp / d.patches(), py = (bp % d.patches()) / g, px = bp % g;
    float* dst = cols + (long)bp * d.patch_dim();
    for (int c = 0; c < d.C; ++c)
      for (int ky = 0; ky < P; ++ky) {
        const float* src = pixels + (((long)b * d.C + c) * S + py * P + ky) * S + px * P;
        std::memcpy(dst, src, sizeof(float) * P);
        dst += P;
      }
  }
}

void patch_embed_forward(const PatchDims& d, const float* pixels, const LinearWeights& proj, const float* cls,
                         const float* pos, float* cols, float* patch_out, float* x) {
  im2col(d, pixels, cols);
  linear_forward(patch_out, cols, proj, d.B * d.patches());
  const int n = 1 + d.patches(), D = d.D;
#pragma omp parallel for schedule(static) if (long(d.B) * n * D >= kParallelMin)
  for (int bt = 0; bt < d.B * n; ++bt) {
    const int b = bt / n, t = bt % n;
    const float* src = t == 0 ? cls : patch_out + ((long)b * d.patches() + t - 1) * D;
    const float* p = pos + (long)t * D;
    float* dst = x + (long)bt * D;
    for (int c = 0; c < D; ++c) dst[c] = src[c] + p[c];
  }
}

}  // namespace vitqk

namespace vitqk {

void patch_embed_backward(const PatchDims& d, const float* dx, const float* cols, float* dpatch, float* dw,
                          float* dbias, float* dcls, float* dpos) {
  const int n = 1 + d.patches(), D = d.D;
  // Class token and position embedding: sums over the batch, images in order.
#pragma omp parallel for schedule(static)
  for (int t = 0; t < n; ++t)
    for (int b = 0; b < d.B; ++b) {
      const float* g = dx + ((long)b * n + t) * D;
      float* dp = dpos + (long)t * D;
      for (int c = 0; c < D; ++c) dp[c] += g[c];
    }
  for (int b = 0; b < d.B; ++b)
    for (int c = 0; c < D; ++c) dcls[c] += dx[(long)b * n * D + c];
#pragma omp parallel for schedule(static)
  for (int bp = 0; bp < d.B * d.patches(); ++bp) {
    const int b = bp / d.patches(), t = 1 + bp % d.patches();
    std::memcpy(dpatch + (long)bp * D, dx + ((long)b * n + t) * D, sizeof(float) * D);
  }
  linear_backward(nullptr, dw, dbias, dpatch, cols, nullptr, d.B * d.patches(), d.patch_dim(), D);
}

}  // namespace vitqk
