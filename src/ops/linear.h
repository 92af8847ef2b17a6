#pragma once
namespace vitqk {
// y[M,N] (=|+=) x[M,K] W[N,K]^T + b[N]  (PyTorch nn.Linear layout). `accumulate` adds onto y,
// which is how residual connections are fused into the projection that feeds them.
void linear_forward(float* y, const float* x, const float* W, const float* b, int M, int K, int N,
                    bool accumulate = false);

// Gradients of linear_forward, all accumulated (+=): dx += dy W, dW += dy^T x, db += sum_rows dy.
// dx, db may be null. Deterministic for a fixed thread count.
void linear_backward(float* dx, float* dW, float* db, const float* dy, const float* x, const float* W, int M, int K,
                     int N);

// db[N] += sum over M rows of dy[M,N], in row order (the same bits whatever the threads).
void sum_rows(float* db, const float* dy, int M, int N);
}  // namespace vitqk
