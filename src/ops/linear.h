#pragma once
namespace vitqk {
// y[M,N] (=|+=) x[M,K] W[N,K]^T + b[N]  (PyTorch nn.Linear layout). `accumulate` adds onto y,
// which is how residual connections are fused into the projection that feeds them.
void linear_forward(float* y, const float* x, const float* W, const float* b, int M, int K, int N,
                    bool accumulate = false);
}  // namespace vitqk
