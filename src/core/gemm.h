#pragma once
// The one GEMM entry point: every matrix product in vitqk goes through here, so the
// backend is a single file. Row-major, BLAS semantics:
//   C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C
// op(X) is X or X^T; lda/ldb/ldc are row strides of the matrices as stored.
// Called from inside an OpenMP parallel region it runs on the calling thread only.
namespace vitqk {

void gemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, int lda,
          const float* B, int ldb, float beta, float* C, int ldc);

}  // namespace vitqk
