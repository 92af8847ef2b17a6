#include "ops/linear.h"

#include "core/gemm.h"
#include "ops/reduce.h"

namespace vitqk {

void linear_forward(float* y, const float* x, const LinearWeights& w, int M, Epilogue e, const float* residual) {
  if (w.packed) linear_gemm(y, x, *w.packed, w.b, M, e, residual);
  else linear_gemm(y, x, w.W, w.b, M, w.K, w.N, e, residual);
}

}  // namespace vitqk

namespace vitqk {

void sum_rows(float* db, const float* dy, int M, int N) {
  column_sums(db, M, N, [&](auto acc, int i, auto at) { return acc + at(dy + (long)i * N); });
}

void linear_backward(float* dx, float* dW, float* db, const float* dy, const float* x, const float* W, int M, int K,
                     int N, bool add_dx) {
  if (dx) gemm(false, false, M, K, N, 1.0f, dy, N, W, K, add_dx ? 1.0f : 0.0f, dx, K);
  gemm_accumulate(true, false, N, K, M, dy, N, x, K, dW, K);
  if (db) sum_rows(db, dy, M, N);
}

}  // namespace vitqk
