#pragma once
// The products inside attention, one head at a time (50 x 50 x 16 in the default training
// model, 197 x 197 x 64 in ViT-B), are too small for a library call to pay off: oneDNN's
// sgemm spends about as long choosing and packing as multiplying (1.05 us for 50 x 50 x 16,
// 34% of one core's FMA peak). This kernel keeps everything in registers and L1.
namespace vitqk {

// C[M,N] = alpha * op(A) op(B) + beta * C with gemm()'s conventions (row-major; beta == 0
// does not read C). Returns false, computing nothing, where it does not apply: on a CPU
// without AVX-512 (F and VL), or when a dimension is too large for its buffers (N or K above
// 1024). Runs on the calling thread.
bool small_gemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, int lda,
                const float* B, int ldb, float beta, float* C, int ldc);

// C[M,N] += op(A) op(B) with each element's sum one chain of FMAs over k, in order, that starts
// from C's value: consecutive ranges of k in successive calls give the bits of one call over
// all of them (small_gemm's beta = 1 adds the finished sum to C, which rounds differently).
// Declines, computing nothing, as small_gemm does.
bool small_gemm_chain(bool trans_a, bool trans_b, int M, int N, int K, const float* A, int lda, const float* B,
                      int ldb, float* C, int ldc);

}  // namespace vitqk
