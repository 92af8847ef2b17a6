#pragma once
namespace vitqk {
// y = (x - mean) / sqrt(var + eps) * w + b over the last dimension C of N rows (biased
// variance, as torch.nn.LayerNorm). mean/rstd ([N] each) are kept for the backward pass and
// may be null at inference.
void layernorm_forward(float* y, float* mean, float* rstd, const float* x, const float* w, const float* b,
                       int N, int C, float eps);

// dx += dL/dx; dw += dL/dw; db += dL/db (accumulated: the residual stream's gradient flows on).
void layernorm_backward(float* dx, float* dw, float* db, const float* dy, const float* x, const float* mean,
                        const float* rstd, const float* w, int N, int C);
}  // namespace vitqk
