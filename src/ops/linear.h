#pragma once
#include "core/gemm.h"

namespace vitqk {

// A linear layer's parameters as the forward pass reads them: W [N, K] in nn.Linear's layout,
// or the same matrix packed once for inference (then W is unused), and the bias b [N] (may be
// null).
struct LinearWeights {
  const float* W = nullptr;
  const PackedWeights* packed = nullptr;
  const float* b = nullptr;
  int N = 0, K = 0;
};

// y[M,N] = epilogue(x[M,K] W^T + b) (PyTorch nn.Linear layout). Epilogue::Residual adds
// `residual` (y itself when null), which is how residual connections are fused into the
// projection that feeds them.
void linear_forward(float* y, const float* x, const LinearWeights& w, int M, Epilogue e = Epilogue::None,
                    const float* residual = nullptr);

// Gradients of linear_forward: dx = dy W (dx += dy W with add_dx), dW += dy^T x, db += sum_rows dy.
// dx is overwritten unless something else (merged attention's shared keys and values) has
// already added into it, which spares zeroing it first; dx, db may be null. The parameter
// gradients continue their sums over rows (gemm_accumulate, sum_rows): a batch's rows in
// consecutive slices, one call each, give the bits of one call over all of them. dW is summed
// on the calling thread (training runs one slot per thread).
void linear_backward(float* dx, float* dW, float* db, const float* dy, const float* x, const float* W, int M, int K,
                     int N, bool add_dx = false);

// db[N] += sum over M rows of dy[M,N], in row order (the same bits whatever the threads).
void sum_rows(float* db, const float* dy, int M, int N);
}  // namespace vitqk
