// The register kernel of attention's per-head products against a float64 reference: every
// transpose, row counts around its tile heights (6 and 8), column counts around its vector
// width (16) and block width (64), beta 0 (C not read, so NaN there stays harmless) and not.
#include "core/small_gemm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "core/peak.h"
#include "core/rng.h"
#include "testing.h"

namespace vitqk {
namespace {

std::vector<float> random(size_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (float& x : v) x = rng.normal();
  return v;
}

TEST(SmallGemm, MatchesReferenceOnEveryEdge) {
  if (!cpu_info().avx512f) GTEST_SKIP() << "no AVX-512: gemm() uses oneDNN alone";
  int cases = 0;
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (int M : {1, 5, 6, 7, 9, 50})
        for (int N : {1, 15, 16, 17, 50, 64, 65, 130})
          for (int K : {1, 16, 50})
            for (float beta : {0.0f, 0.5f}) {
              const int pad = 3, lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
              const auto A = random(size_t(ta ? K : M) * lda, 1), B = random(size_t(tb ? N : K) * ldb, 2);
              auto C = beta == 0.0f ? std::vector<float>(size_t(M) * ldc, std::numeric_limits<float>::quiet_NaN())
                                    : random(size_t(M) * ldc, 3);
              const auto C0 = C;
              const float alpha = 0.75f;
              ASSERT_TRUE(small_gemm(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), ldc));
              for (int i = 0; i < M; ++i) {
                for (int j = 0; j < N; ++j) {
                  const auto [acc, mag] = testing::product_entry(ta, tb, A.data(), lda, B.data(), ldb, i, j, K);
                  const double c0 = beta == 0.0f ? 0.0 : C0[size_t(i) * ldc + j];
                  // float32 accumulation over K terms: K ulps of the magnitude bound it.
                  ASSERT_NEAR(C[size_t(i) * ldc + j], alpha * acc + beta * c0, 1.2e-7 * K * (mag + std::fabs(c0)) + 1e-30)
                      << ta << tb << " " << M << "x" << N << "x" << K << " beta " << beta << " at " << i << "," << j;
                }
                for (int j = N; j < ldc; ++j)  // the padding after each row is never written
                  ASSERT_TRUE(std::isnan(C[size_t(i) * ldc + j]) || C[size_t(i) * ldc + j] == C0[size_t(i) * ldc + j]);
              }
              ++cases;
            }
  EXPECT_EQ(cases, 2 * 2 * 6 * 8 * 3 * 2);
}

TEST(SmallGemm, DeclinesWhatItDoesNotCover) {
  std::vector<float> A(2048), B(2048), C(4);
  EXPECT_FALSE(small_gemm(false, false, 1, 1, 1025, 1.0f, A.data(), 1025, B.data(), 1, 0.0f, C.data(), 1));
  EXPECT_FALSE(small_gemm(false, false, 1, 1025, 1, 1.0f, A.data(), 1, B.data(), 1025, 0.0f, C.data(), 1025));
}

}  // namespace
}  // namespace vitqk
