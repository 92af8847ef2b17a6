// The register kernel of attention's per-head products against a float64 reference: every
// transpose, row counts around its tile heights (6, 8, 12), column counts around its vector
// width (16), its half-width last column (8 or fewer left over) and block width (64), beta 0
// (C not read, so NaN there stays harmless) and not; and the 197-token heads of ViT-Ti/B.
#include "core/small_gemm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "core/peak.h"
#include "testing.h"

namespace vitqk {
namespace {

using testing::normal_floats;

// One product against float64: C's padding keeps its values, beta 0 never reads C.
void expect_matches_reference(bool ta, bool tb, int M, int N, int K, float beta) {
  const int pad = 3, lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
  const auto A = normal_floats(size_t(ta ? K : M) * lda, 1), B = normal_floats(size_t(tb ? N : K) * ldb, 2);
  auto C = beta == 0.0f ? std::vector<float>(size_t(M) * ldc, std::numeric_limits<float>::quiet_NaN())
                        : normal_floats(size_t(M) * ldc, 3);
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
}

TEST(SmallGemm, MatchesReferenceOnEveryEdge) {
  if (!cpu_info().avx512f || !cpu_info().avx512vl) GTEST_SKIP() << "no AVX-512 F and VL: gemm() uses oneDNN alone";
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (int M : {1, 5, 6, 7, 9, 12, 13, 50})
        for (int N : {1, 8, 9, 15, 16, 17, 24, 25, 50, 64, 65, 130})
          for (int K : {1, 16, 50})
            for (float beta : {0.0f, 0.5f}) {
              SCOPED_TRACE(::testing::Message() << ta << tb << " " << M << "x" << N << "x" << K << " beta " << beta);
              expect_matches_reference(ta, tb, M, N, K, beta);
              if (HasFatalFailure()) return;
            }
}

// The 197-token heads of ViT-Ti/B (head width 64, and a quarter of the query rows as ViT-Ti's
// batch-1 attention cuts them on two threads), which gemm() sends here too: K up to 197, many
// 64-column blocks.
TEST(SmallGemm, MatchesReferenceOnViTHeads) {
  if (!cpu_info().avx512f || !cpu_info().avx512vl) GTEST_SKIP() << "no AVX-512 F and VL: gemm() uses oneDNN alone";
  const int shapes[][3] = {{197, 197, 64}, {197, 64, 197}, {50, 197, 64}, {50, 64, 197}};
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (const auto& s : shapes)
        for (float beta : {0.0f, 1.0f}) {
          SCOPED_TRACE(::testing::Message() << ta << tb << " " << s[0] << "x" << s[1] << "x" << s[2] << " beta " << beta);
          expect_matches_reference(ta, tb, s[0], s[1], s[2], beta);
          if (HasFatalFailure()) return;
        }
}

TEST(SmallGemm, DeclinesWhatItDoesNotCover) {
  std::vector<float> A(2048), B(2048), C(4);
  EXPECT_FALSE(small_gemm(false, false, 1, 1, 1025, 1.0f, A.data(), 1025, B.data(), 1, 0.0f, C.data(), 1));
  EXPECT_FALSE(small_gemm(false, false, 1, 1025, 1, 1.0f, A.data(), 1, B.data(), 1025, 0.0f, C.data(), 1025));
}

}  // namespace
}  // namespace vitqk
