#include "train/adamw.h"

#include <algorithm>
#include <cmath>

namespace vitqk {

float lr_at(const AdamWConfig& c, long step) {
  if (step < c.warmup_steps) return c.lr * float(step + 1) / float(c.warmup_steps);
  const long span = std::max(1L, c.total_steps - c.warmup_steps);
  const double t = std::min(1.0, double(step - c.warmup_steps) / double(span));
  return float(c.min_lr + 0.5 * (c.lr - c.min_lr) * (1.0 + std::cos(M_PI * t)));
}

double clip_grad_norm(float* grads, size_t n, float clip) {
  // Fixed-size chunks summed in order: the same norm whatever the thread count.
  constexpr size_t kChunk = 1 << 14;
  const size_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> partial(chunks, 0.0);
#pragma omp parallel for schedule(static)
  for (size_t c = 0; c < chunks; ++c) {
    double s = 0;
    const size_t end = std::min(n, (c + 1) * kChunk);
    // 8 double lanes per chunk: one chain of 16K dependent adds was 0.2% of a training step.
#pragma omp simd reduction(+ : s)
    for (size_t i = c * kChunk; i < end; ++i) s += double(grads[i]) * grads[i];
    partial[c] = s;
  }
  double total = 0;
  for (double s : partial) total += s;
  const double norm = std::sqrt(total);
  if (clip > 0 && norm > clip) {
    const float scale = float(clip / (norm + 1e-6));
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; ++i) grads[i] *= scale;
  }
  return norm;
}

void adamw_step(const ParamLayout& layout, float* params, const float* grads, float* m, float* v, long step, float lr,
                const AdamWConfig& c) {
  const float bc1 = 1.0f - std::pow(c.beta1, float(step)), bc2 = 1.0f - std::pow(c.beta2, float(step));
  // One parallel region for all the tensors (a region per tensor, ~80 in the default model,
  // cost more than their arithmetic), vector code within each (scalar divisions and square
  // roots were 1.5% of a training step; see CMakeLists.txt). Elements are independent: no
  // barrier between tensors.
  const std::vector<ParamInfo>& ps = layout.params();
#pragma omp parallel
  for (const ParamInfo& p : ps) {
    const float decay = p.decay ? lr * c.wd : 0.0f;
    const long end = long(p.offset + p.numel);
#pragma omp for simd schedule(static) nowait
    for (long i = long(p.offset); i < end; ++i) {
      const float g = grads[i];
      m[i] = c.beta1 * m[i] + (1.0f - c.beta1) * g;
      v[i] = c.beta2 * v[i] + (1.0f - c.beta2) * g * g;
      const float mhat = m[i] / bc1, vhat = v[i] / bc2;
      params[i] -= lr * (mhat / (std::sqrt(vhat) + c.eps)) + decay * params[i];
    }
  }
}

}  // namespace vitqk
