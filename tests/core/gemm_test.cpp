// The GEMM backend against a float64 reference: every transpose and stride combination,
// the fused epilogues, packed fp32 and bf16 weights, odd shapes (197 rows, widths not a
// multiple of 16), batch sizes sharing one packing, and 1 vs 2 threads.
#include "core/gemm.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/peak.h"
#include "testing.h"

namespace vitqk {
namespace {

using testing::normal_floats;

double gelu(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }

// y = epilogue(x W^T + b) in double; also returns sum_k |x_ik w_jk| per entry (the scale of
// rounding errors).
struct Ref {
  std::vector<double> y, mag;
};
Ref reference(const std::vector<float>& x, const std::vector<float>& W, const float* b, const std::vector<float>& y0,
              int M, int K, int N, Epilogue e) {
  Ref r{std::vector<double>(size_t(M) * N), std::vector<double>(size_t(M) * N)};
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      double s = b ? b[j] : 0.0, m = 0;
      for (int k = 0; k < K; ++k) {
        s += double(x[size_t(i) * K + k]) * W[size_t(j) * K + k];
        m += std::fabs(double(x[size_t(i) * K + k]) * W[size_t(j) * K + k]);
      }
      const size_t o = size_t(i) * N + j;
      r.y[o] = e == Epilogue::Gelu ? gelu(s) : e == Epilogue::Residual ? y0[o] + s : s;
      r.mag[o] = m + (b ? std::fabs(b[j]) : 0.0);
    }
  return r;
}

// Largest error in units of the entry's magnitude (so one bound fits every shape).
double worst(const std::vector<float>& y, const Ref& r) {
  double w = 0;
  for (size_t i = 0; i < y.size(); ++i) w = std::max(w, std::fabs(y[i] - r.y[i]) / (r.mag[i] + 1e-3));
  return w;
}

struct Shape {
  int M, K, N;
};
const Shape kShapes[] = {{1, 16, 16}, {197, 64, 192}, {197, 37, 50}, {8, 768, 1000}, {50, 128, 64}, {3, 200, 33}};

TEST(Gemm, AllTransposesStridesAlphaBeta) {
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (const Shape s : {Shape{197, 64, 197}, Shape{5, 7, 3}, Shape{50, 16, 50}}) {
        const int M = s.M, K = s.K, N = s.N, pad = 3;
        const int lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
        const auto A = normal_floats(size_t(ta ? K : M) * lda, 1), B = normal_floats(size_t(tb ? N : K) * ldb, 2);
        auto C = normal_floats(size_t(M) * ldc, 3);
        const auto C0 = C;
        const float alpha = 0.5f, beta = 0.25f;
        gemm(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), ldc);
        for (int i = 0; i < M; ++i)
          for (int j = 0; j < N; ++j) {
            const auto [acc, mag] = testing::product_entry(ta, tb, A.data(), lda, B.data(), ldb, i, j, K);
            const double want = alpha * acc + beta * C0[size_t(i) * ldc + j];
            ASSERT_NEAR(C[size_t(i) * ldc + j], want, 1e-6 * (mag + 1)) << ta << tb << " " << M << "x" << N << "x" << K;
          }
        for (int i = 0; i < M; ++i)  // the padding between rows is never written
          for (int j = N; j < ldc; ++j) ASSERT_EQ(C[size_t(i) * ldc + j], C0[size_t(i) * ldc + j]);
      }
}

TEST(Gemm, InsideParallelRegionEachThreadComputesItsOwn) {
  const int M = 197, N = 64, K = 197, tasks = 8;
  const auto A = normal_floats(size_t(M) * K, 4), B = normal_floats(size_t(K) * N, 5);
  std::vector<float> want(size_t(M) * N), got(size_t(tasks) * M * N);
  gemm(false, false, M, N, K, 1.0f, A.data(), K, B.data(), N, 0.0f, want.data(), N);
#pragma omp parallel for num_threads(2)
  for (int t = 0; t < tasks; ++t)
    gemm(false, false, M, N, K, 1.0f, A.data(), K, B.data(), N, 0.0f, got.data() + size_t(t) * M * N, N);
  for (int t = 0; t < tasks; ++t)
    for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(got[size_t(t) * M * N + i], want[i], 1e-4);
}

// gemm_accumulate is, element by element, C's value then one fma per k in order: exactly the
// scalar chain below, whatever the transposes, with widths and depths past the register
// kernel's blocks of 1024 and K taken in uneven pieces (a slot's rows, a pass at a time).
TEST(GemmAccumulate, EqualsOneFmaChainPerElementInPieces) {
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (const Shape s : {Shape{7, 1300, 33}, Shape{13, 50, 1100}, Shape{50, 2100, 20}}) {
        const int M = s.M, K = s.K, N = s.N, pad = 3;
        SCOPED_TRACE(::testing::Message() << ta << tb << " " << M << "x" << N << "x" << K);
        const int lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
        const auto A = normal_floats(size_t(ta ? K : M) * lda, 1), B = normal_floats(size_t(tb ? N : K) * ldb, 2);
        const auto C0 = normal_floats(size_t(M) * ldc, 3);
        auto whole = C0, pieces = C0;
        gemm_accumulate(ta, tb, M, N, K, A.data(), lda, B.data(), ldb, whole.data(), ldc);
        for (int k0 = 0, len = 1; k0 < K; k0 += len, len = 2 * len + 1) {
          const int nk = std::min(len, K - k0);
          gemm_accumulate(ta, tb, M, N, nk, A.data() + (ta ? size_t(k0) * lda : k0), lda,
                          B.data() + (tb ? k0 : size_t(k0) * ldb), ldb, pieces.data(), ldc);
        }
        for (int i = 0; i < M; ++i) {
          for (int j = 0; j < N; ++j) {
            float acc = C0[size_t(i) * ldc + j];
            for (int k = 0; k < K; ++k)
              acc = std::fma(ta ? A[size_t(k) * lda + i] : A[size_t(i) * lda + k],
                             tb ? B[size_t(j) * ldb + k] : B[size_t(k) * ldb + j], acc);
            ASSERT_EQ(whole[size_t(i) * ldc + j], acc) << "at " << i << "," << j;
            ASSERT_EQ(pieces[size_t(i) * ldc + j], acc) << "in pieces, at " << i << "," << j;
          }
          for (int j = N; j < ldc; ++j) ASSERT_EQ(whole[size_t(i) * ldc + j], C0[size_t(i) * ldc + j]);
        }
      }
}

TEST(LinearGemm, EpiloguesPlainAndPackedFp32) {
  for (const Shape s : kShapes)
    for (Epilogue e : {Epilogue::None, Epilogue::Gelu, Epilogue::Residual})
      for (bool bias : {false, true}) {
        SCOPED_TRACE(::testing::Message() << s.M << "x" << s.K << "x" << s.N << " epilogue " << int(e) << " bias "
                                          << bias);
        const auto x = normal_floats(size_t(s.M) * s.K, 6), W = normal_floats(size_t(s.N) * s.K, 7, 0.2f);
        const auto b = normal_floats(s.N, 8);
        const auto y0 = normal_floats(size_t(s.M) * s.N, 9);
        const float* bp = bias ? b.data() : nullptr;
        const Ref r = reference(x, W, bp, y0, s.M, s.K, s.N, e);
        auto plain = y0, packed = y0;
        linear_gemm(plain.data(), x.data(), W.data(), bp, s.M, s.K, s.N, e);
        const PackedWeights P(W.data(), s.N, s.K, Precision::F32);
        EXPECT_GE(P.bytes(), size_t(s.N) * s.K * 4);
        linear_gemm(packed.data(), x.data(), P, bp, s.M, e);
        // fp32 accumulation: a few ulps of the magnitude; the erf GELU adds its own ~1e-7.
        EXPECT_LT(worst(plain, r), 2e-6);
        EXPECT_LT(worst(packed, r), 2e-6);
      }
}

TEST(LinearGemm, ResidualReadFromElsewhereMatchesInPlaceBitForBit) {
  // Training sums the residual from the layer's input (a binary add), inference into the
  // stream in place (oneDNN's sum): the same floats must come out, or the two would drift.
  for (const Shape s : kShapes) {
    SCOPED_TRACE(::testing::Message() << s.M << "x" << s.K << "x" << s.N);
    const auto x = normal_floats(size_t(s.M) * s.K, 20), W = normal_floats(size_t(s.N) * s.K, 21, 0.2f);
    const auto b = normal_floats(s.N, 22), r = normal_floats(size_t(s.M) * s.N, 23);
    auto in_place = r;
    std::vector<float> apart(r.size(), NAN);
    linear_gemm(in_place.data(), x.data(), W.data(), b.data(), s.M, s.K, s.N, Epilogue::Residual);
    linear_gemm(apart.data(), x.data(), W.data(), b.data(), s.M, s.K, s.N, Epilogue::Residual, r.data());
    EXPECT_EQ(apart, in_place);
    EXPECT_NE(apart, r);
    for (Precision p : {Precision::F32, Precision::BF16}) {
      if (p == Precision::BF16 && !cpu_info().avx512_bf16) continue;
      const PackedWeights P(W.data(), s.N, s.K, p);
      auto packed_in_place = r;
      std::vector<float> packed_apart(r.size(), NAN);
      linear_gemm(packed_in_place.data(), x.data(), P, b.data(), s.M, Epilogue::Residual);
      linear_gemm(packed_apart.data(), x.data(), P, b.data(), s.M, Epilogue::Residual, r.data());
      EXPECT_EQ(packed_apart, packed_in_place) << (p == Precision::BF16 ? "bf16" : "fp32");
    }
  }
}

TEST(LinearGemm, OnePackingServesEveryBatchSize) {
  const int K = 192, N = 576;
  const auto W = normal_floats(size_t(N) * K, 10, 0.1f), b = normal_floats(N, 11);
  for (Precision p : {Precision::F32, Precision::BF16}) {
    if (p == Precision::BF16 && !cpu_info().avx512_bf16) continue;
    const PackedWeights P(W.data(), N, K, p);
    for (int M : {1, 8, 197, 394, 1576}) {
      const auto x = normal_floats(size_t(M) * K, 12 + M);
      std::vector<float> y(size_t(M) * N), want(size_t(M) * N);
      linear_gemm(y.data(), x.data(), P, b.data(), M, Epilogue::None);
      linear_gemm(want.data(), x.data(), W.data(), b.data(), M, K, N, Epilogue::None);
      const double tol = p == Precision::F32 ? 1e-4 : 0.1;
      for (size_t i = 0; i < y.size(); ++i) ASSERT_NEAR(y[i], want[i], tol) << "M " << M;
    }
  }
}

TEST(LinearGemm, Bf16WithinItsRoundingBound) {
  if (!cpu_info().avx512_bf16) GTEST_SKIP() << "no AVX512-BF16 on this CPU";
  for (const Shape s : kShapes)
    for (Epilogue e : {Epilogue::None, Epilogue::Gelu, Epilogue::Residual}) {
      const auto x = normal_floats(size_t(s.M) * s.K, 13), W = normal_floats(size_t(s.N) * s.K, 14, 0.2f);
      const auto b = normal_floats(s.N, 15);
      const auto y0 = normal_floats(size_t(s.M) * s.N, 16);
      const Ref r = reference(x, W, b.data(), y0, s.M, s.K, s.N, e);
      auto y = y0;
      const PackedWeights P(W.data(), s.N, s.K, Precision::BF16);
      linear_gemm(y.data(), x.data(), P, b.data(), s.M, e);
      // Both operands rounded to 8 significant bits: each product is off by at most 2^-8
      // of itself; fp32 accumulation adds next to nothing.
      const double w = worst(y, r);
      EXPECT_LT(w, std::ldexp(1.0, -8)) << s.M << "x" << s.K << "x" << s.N;
      EXPECT_GT(w, 0.0);  // it really ran in bf16
    }
}

TEST(LinearGemm, OneAndTwoThreadsAgree) {
  const int M = 197, K = 768, N = 300;
  const auto x = normal_floats(size_t(M) * K, 17), W = normal_floats(size_t(N) * K, 18, 0.05f), b = normal_floats(N, 19);
  std::vector<float> y1(size_t(M) * N), y2(size_t(M) * N);
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  linear_gemm(y1.data(), x.data(), W.data(), b.data(), M, K, N, Epilogue::Gelu);
  omp_set_num_threads(2);
  linear_gemm(y2.data(), x.data(), W.data(), b.data(), M, K, N, Epilogue::Gelu);
  omp_set_num_threads(threads);
  for (size_t i = 0; i < y1.size(); ++i) ASSERT_NEAR(y1[i], y2[i], 1e-5);
}

TEST(ToBf16, RoundsToNearestEven) {
  const float in[] = {1.0f, 1.00390625f /* halfway: stays 1 */, 1.01171875f /* halfway: up to even */, -2.5f,
                      1e-40f, INFINITY, NAN};
  bf16 out[7];
  to_bf16(out, in, 7);
  EXPECT_EQ(out[0], 0x3f80);
  EXPECT_EQ(out[1], 0x3f80);
  EXPECT_EQ(out[2], 0x3f82);
  EXPECT_EQ(out[3], 0xc020);
  EXPECT_EQ(out[5], 0x7f80);
  EXPECT_TRUE((out[6] & 0x7f80) == 0x7f80 && (out[6] & 0x7f) != 0);
}

}  // namespace
}  // namespace vitqk
