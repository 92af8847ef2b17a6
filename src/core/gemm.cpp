#include "core/gemm.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <oneapi/dnnl/dnnl.hpp>
#include <tuple>
#include <vector>

#include "core/error.h"
#include "core/small_gemm.h"
#include "core/threads.h"

namespace vitqk {

void gemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, int lda,
          const float* B, int ldb, float beta, float* C, int ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) {  // nothing to multiply; BLAS still scales C
    for (int i = 0; i < M; ++i)
      for (int j = 0; j < N; ++j) C[(long)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(long)i * ldc + j];
    return;
  }
  // Inside a parallel region each call is one thread's share: attention's per-head products
  // (50 x 50 x 16 in the default training model, 197 x 197 x 64 and blocks of its rows in
  // ViT-Ti/B), which the register kernel runs 1.1-1.8x faster than oneDNN's sgemm
  // (benchmarks/gemm.cpp, BM_HeadGemm), and the input gradients of a training pass's linear
  // layers (256 rows or one image, widths 64-512), where it was level with oneDNN or up to 1.2x
  // faster (measured on 400 rows: the input projection's 400 x 64 x 192) up to 26M
  // multiply-adds. The test is the region's level, not whether it is active: a 1-thread team
  // must take the same kernel as a 2-thread one (the two sum in different orders), or training
  // bits would depend on the thread count.
  constexpr long kSmallMacs = 1L << 25;
  if (omp_get_level() > 0 && long(M) * N * K <= kSmallMacs &&
      small_gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc))
    return;
  const dnnl_status_t s = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta,
                                     C, ldc);
  if (s != dnnl_success) fail("internal error: oneDNN sgemm failed (status ", int(s), ") for ", M, "x", N, "x", K);
}

void gemm_accumulate(bool trans_a, bool trans_b, int M, int N, int K, const float* A, int lda, const float* B,
                     int ldb, float* C, int ldc) {
  // The register kernel takes N and K up to 1024: larger ones in blocks, the chains carried
  // through C from one block of k to the next.
  constexpr int kBlock = 1024;
  for (int j0 = 0; j0 < N; j0 += kBlock)
    for (int k0 = 0; k0 < K; k0 += kBlock) {
      const int nj = std::min(kBlock, N - j0), nk = std::min(kBlock, K - k0);
      const float* a = A + (trans_a ? long(k0) * lda : k0);
      const float* b = B + (trans_b ? long(j0) * ldb + k0 : long(k0) * ldb + j0);
      if (small_gemm_chain(trans_a, trans_b, M, nj, nk, a, lda, b, ldb, C + j0, ldc)) continue;
      // No AVX-512: the same chains, k outermost per row of C so that the loop over its
      // columns vectorises (each element still takes its FMAs in the order of k).
      for (int i = 0; i < M; ++i) {
        float* c = C + long(i) * ldc + j0;
        for (int k = 0; k < nk; ++k) {
          const float aik = trans_a ? a[long(k) * lda + i] : a[long(i) * lda + k];
#pragma omp simd
          for (int j = 0; j < nj; ++j)
            c[j] = std::fma(aik, trans_b ? b[long(j) * ldb + k] : b[long(k) * ldb + j], c[j]);
        }
      }
    }
}

void to_bf16(bf16* dst, const float* src, long n) {
#pragma omp parallel for schedule(static) if (n >= kParallelMin && !omp_in_parallel())
  for (long i = 0; i < n; ++i) {
    uint32_t u;
    std::memcpy(&u, &src[i], 4);
    const bool nan = (u & 0x7fffffffu) > 0x7f800000u;
    dst[i] = nan ? bf16((u >> 16) | 0x40) : bf16((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
  }
}

namespace {

using dnnl::memory;
using dt = memory::data_type;
using tag = memory::format_tag;

dnnl::engine& cpu() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

dnnl::stream& stream() {
  static thread_local dnnl::stream s(cpu());
  return s;
}

dt dnnl_type(Precision p) { return p == Precision::BF16 ? dt::bf16 : dt::f32; }

// oneDNN's matmul computes src [M,K] x weights [K,N]; nn.Linear's W [N,K] row-major is the
// transposed ("ba") layout of that [K,N] matrix, so it is read in place.
memory::desc plain_weights(int K, int N) { return memory::desc({K, N}, dt::f32, tag::ba); }

// A residual added in place is oneDNN's sum post-op (y += ...); one read from elsewhere is a
// binary add, which spares copying it into y first. Both add the same two floats.
dnnl::primitive_attr attributes(Epilogue e, bool residual_apart, int M, int N) {
  dnnl::post_ops ops;
  if (e == Epilogue::Gelu) ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_gelu_erf, 0.0f, 0.0f);
  if (e == Epilogue::Residual && !residual_apart) ops.append_sum(1.0f);
  if (e == Epilogue::Residual && residual_apart)
    ops.append_binary(dnnl::algorithm::binary_add, memory::desc({M, N}, dt::f32, tag::ab));
  dnnl::primitive_attr attr;
  attr.set_post_ops(ops);
  return attr;
}

// Primitives are built once per (shape, weight layout, epilogue, thread count) and reused:
// building one JIT-compiles its kernels (oneDNN's own cache makes a second thread's build of
// the same primitive cheap). Each keeps memory objects whose data pointers are set per call, so
// a call allocates nothing. The thread count is part of the key because oneDNN fixes a
// primitive's work split when it builds it: a training step calls these on one thread per
// slice of the batch (see train/trainer.cpp), inference on all of them.
struct Key {
  int M, K, N, threads;
  Precision precision;
  bool packed, bias;
  Epilogue e;
  bool residual_apart;
  auto operator<=>(const Key&) const = default;
};

struct Cached {
  dnnl::matmul prim;
  memory src, weights, bias, dst, residual;
};

// One cache per thread: the memory objects' data pointers are set per call, so threads may
// not share them.
Cached& matmul_for(const Key& k, const memory::desc& weights) {
  static thread_local std::map<Key, Cached> cache;
  auto it = cache.find(k);
  if (it != cache.end()) return it->second;
  const memory::desc src({k.M, k.K}, dnnl_type(k.precision), tag::ab);
  const memory::desc bias = k.bias ? memory::desc({1, k.N}, dt::f32, tag::ab) : memory::desc();
  const memory::desc dst({k.M, k.N}, dt::f32, tag::ab);
  const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src, weights, bias, dst),
                                        attributes(k.e, k.residual_apart, k.M, k.N), cpu());
  auto none = [](const memory::desc& d) { return memory(d, cpu(), DNNL_MEMORY_NONE); };
  return cache.emplace(k, Cached{dnnl::matmul(pd), none(src), none(weights), none(bias), none(dst), none(dst)})
      .first->second;
}

void run(Cached& c, float* y, const void* x, const void* W, const float* b, const float* residual) {
  c.src.set_data_handle(const_cast<void*>(x));
  c.weights.set_data_handle(const_cast<void*>(W));
  c.dst.set_data_handle(y);
  dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, c.src.get()}, {DNNL_ARG_WEIGHTS, c.weights.get()},
                             {DNNL_ARG_DST, c.dst.get()}};
  int n = 3;
  if (b) c.bias.set_data_handle(const_cast<float*>(b)), args[n++] = {DNNL_ARG_BIAS, c.bias.get()};
  if (residual)
    c.residual.set_data_handle(const_cast<float*>(residual)),
        args[n++] = {DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, c.residual.get()};
  const dnnl_status_t s = dnnl_primitive_execute(c.prim.get(), stream().get(), n, args);
  if (s != dnnl_success) fail("internal error: oneDNN matmul failed (status ", int(s), ")");
  stream().wait();
}

}  // namespace

struct PackedWeights::Impl {
  memory mem;
};

PackedWeights::PackedWeights(const float* W, int N, int K, Precision p) : N_(N), K_(K), precision_(p) {
  // The kernels' preferred layout, as oneDNN chooses it for a typical ViT row count; it
  // depends on K, N and the type, not on M, so one packing serves every batch size.
  const memory::desc any({K, N}, dnnl_type(p), tag::any);
  const memory::desc src({256, K}, dnnl_type(p), tag::ab), dst({256, N}, dt::f32, tag::ab);
  const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src, any, dst), cpu());
  auto impl = std::make_shared<Impl>();
  impl->mem = memory(pd.weights_desc(), cpu());
  memory user(plain_weights(K, N), cpu(), const_cast<float*>(W));
  dnnl::reorder(user, impl->mem).execute(stream(), user, impl->mem);
  stream().wait();
  impl_ = std::move(impl);
}

size_t PackedWeights::bytes() const { return impl_->mem.get_desc().get_size(); }

namespace {
// The residual read from elsewhere, or null when it is y itself (or there is none).
const float* apart(Epilogue e, const float* residual, const float* y) {
  return e == Epilogue::Residual && residual && residual != y ? residual : nullptr;
}
}  // namespace

void linear_gemm(float* y, const float* x, const float* W, const float* b, int M, int K, int N, Epilogue e,
                 const float* residual) {
  if (M == 0 || N == 0) return;
  const float* r = apart(e, residual, y);
  const Key k{M, K, N, omp_get_max_threads(), Precision::F32, false, b != nullptr, e, r != nullptr};
  run(matmul_for(k, plain_weights(K, N)), y, x, W, b, r);
}

void linear_gemm(float* y, const float* x, const PackedWeights& W, const float* b, int M, Epilogue e,
                 const float* residual) {
  if (M == 0 || W.N() == 0) return;
  const memory& w = W.impl().mem;
  const float* r = apart(e, residual, y);
  const Key k{M, W.K(), W.N(), omp_get_max_threads(), W.precision(), true, b != nullptr, e, r != nullptr};
  Cached& c = matmul_for(k, w.get_desc());
  if (W.precision() == Precision::F32) return run(c, y, x, w.get_data_handle(), b, r);
  // bf16 kernels read bf16 activations: round x once into scratch that lives as long as the
  // thread, so the hot path allocates only when a larger batch first arrives.
  static thread_local std::vector<bf16> xb;
  const size_t n = size_t(M) * W.K();
  if (xb.size() < n) xb.resize(n);
  to_bf16(xb.data(), x, long(n));
  run(c, y, xb.data(), w.get_data_handle(), b, r);
}

}  // namespace vitqk
