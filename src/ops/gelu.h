#pragma once
namespace vitqk {
// Exact GELU, x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)), as PyTorch's default nn.GELU (not
// the tanh approximation). In place is allowed (y == x).
void gelu_forward(float* y, const float* x, long n);
// dx = dy * (Phi(x) + x phi(x)), given the forward's input x and output y; dx may alias dy.
void gelu_backward(float* dx, const float* x, const float* y, const float* dy, long n);
}  // namespace vitqk
