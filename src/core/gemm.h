#pragma once
// Every matrix product in vitqk goes through this file, so the backend is one file: oneDNN
// 2.6 (Debian's libdnnl), whose brgemm kernels run near the FMA peak on ViT shapes (OpenBLAS
// 0.3.21 reached about half of that here). Row-major throughout.
#include <cstddef>
#include <cstdint>
#include <memory>

namespace vitqk {

// General GEMM, BLAS semantics: C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C.
// op(X) is X or X^T; lda/ldb/ldc are row strides of the matrices as stored. Called from
// inside an OpenMP parallel region it runs on the calling thread only (attention's per-head
// products); otherwise on all threads.
void gemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, int lda,
          const float* B, int ldb, float beta, float* C, int ldc);

// C[M,N] += op(A)[M,K] op(B)[K,N], each element's sum one chain of FMAs over k in order that
// starts from C's value, so that a sum over K taken in consecutive pieces, one call each, has
// the bits of one call over all of K: a training slot's weight gradients, summed over its rows
// a few images at a time (train/trainer.cpp). Runs on the calling thread.
void gemm_accumulate(bool trans_a, bool trans_b, int M, int N, int K, const float* A, int lda, const float* B,
                     int ldb, float* C, int ldc);

enum class Precision { F32, BF16 };

// bfloat16 as stored: the upper half of an IEEE float.
using bf16 = uint16_t;
// Round to nearest even (NaN stays NaN), as PyTorch's and safetensors' conversions.
void to_bf16(bf16* dst, const float* src, long n);

// The weight matrix W [N, K] of an nn.Linear (y = x W^T + b), repacked once into the blocked
// layout the kernels read, in fp32 or bf16. Inference packs every matrix at load.
class PackedWeights {
 public:
  PackedWeights(const float* W, int N, int K, Precision p);
  int N() const { return N_; }
  int K() const { return K_; }
  Precision precision() const { return precision_; }
  size_t bytes() const;

  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  int N_, K_;
  Precision precision_;
  std::shared_ptr<const Impl> impl_;
};

// What happens to x W^T + b on its way into y.
enum class Epilogue {
  None,      // y  = x W^T + b
  Gelu,      // y  = gelu(x W^T + b), exact (erf) GELU
  Residual,  // y = x W^T + b + r: the residual connection fused into the projection feeding it
};

// y[M,N] = epilogue(x[M,K] W^T + b), W [N,K] as stored by nn.Linear; b may be null. The
// residual r [M,N] of Epilogue::Residual is `residual`, or y itself when that is null. Runs on
// omp_get_max_threads() threads; threads may call it at once. Primitives are built once per
// shape and thread.
void linear_gemm(float* y, const float* x, const float* W, const float* b, int M, int K, int N, Epilogue e,
                 const float* residual = nullptr);
// The same with packed weights. For bf16 weights x is rounded to bf16 first (fp32 accumulation).
void linear_gemm(float* y, const float* x, const PackedWeights& W, const float* b, int M, Epilogue e,
                 const float* residual = nullptr);

}  // namespace vitqk
