// Per-column gradient sums (biases, LayerNorm scales) against the plain row-by-row loop they
// replace, bit for bit: the register blocks must add the rows in order, start from what the
// output held, and neither read nor write past the masked last vector.
#include "ops/reduce.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "ops/layernorm.h"
#include "ops/linear.h"

namespace vitqk {
namespace {

std::vector<float> normals(size_t n, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> v(n);
  for (float& x : v) x = normal(rng);
  return v;
}

// Widths on both sides of a vector (16) and of a register block (128 columns).
constexpr int kWidths[] = {1, 15, 16, 17, 64, 127, 128, 129, 192, 300};

TEST(ColumnSums, BiasGradientAddsRowsInOrderBitForBit) {
  std::mt19937 rng(11);
  for (int N : kWidths) {
    const int M = 37;
    const std::vector<float> dy = normals(size_t(M) * N, rng);
    // One spare value past the end: the masked tail must leave it alone.
    std::vector<float> db = normals(size_t(N) + 1, rng), want = db;
    for (int i = 0; i < M; ++i)
      for (int j = 0; j < N; ++j) want[j] += dy[size_t(i) * N + j];
    sum_rows(db.data(), dy.data(), M, N);
    EXPECT_EQ(0, std::memcmp(db.data(), want.data(), sizeof(float) * (N + 1))) << N << " columns";
  }
}

TEST(ColumnSums, LayerNormParameterGradientsBitForBit) {
  std::mt19937 rng(12);
  for (int C : kWidths) {
    const int N = 23;
    const std::vector<float> dy = normals(size_t(N) * C, rng), x = normals(size_t(N) * C, rng),
                             mean = normals(N, rng), w = normals(C, rng);
    std::vector<float> rstd = normals(N, rng);
    for (float& r : rstd) r = 1.0f + std::abs(r);
    std::vector<float> dw = normals(C, rng), db = normals(C, rng), dx(size_t(N) * C, 0.0f);
    std::vector<float> want_w = dw, want_b = db;
    for (int i = 0; i < N; ++i)
      for (int c = 0; c < C; ++c) {
        const float g = dy[size_t(i) * C + c];
        want_w[c] += g * (x[size_t(i) * C + c] - mean[i]) * rstd[i];
        want_b[c] += g;
      }
    layernorm_backward(dx.data(), dw.data(), db.data(), dy.data(), x.data(), mean.data(), rstd.data(), w.data(), N,
                       C);
    EXPECT_EQ(0, std::memcmp(dw.data(), want_w.data(), sizeof(float) * C)) << C << " columns";
    EXPECT_EQ(0, std::memcmp(db.data(), want_b.data(), sizeof(float) * C)) << C << " columns";
  }
}

TEST(RowSum, MatchesFloat64AtEveryWidthWithTheTailMasked) {
  std::mt19937 rng(13);
  for (int n = 1; n <= 300; ++n) {
    const std::vector<float> x = normals(size_t(n), rng);
    // (x - 3)^2 is 9 for the zeros a masked load reads: the tail's dropped lanes must not count.
    const float got = row_sum(n, [&](auto at) {
      const auto d = at(x.data()) - 3.0f;
      return d * d;
    });
    double want = 0;  // every term is positive: its own magnitude
    for (float v : x) want += (double(v) - 3.0) * (double(v) - 3.0);
    // Each term rounded once, then added in a chain of n/16 per lane and a 4-level tree: at most
    // an ulp (6e-8) of the running sum per step.
    EXPECT_NEAR(got, want, 6e-8 * want * (n / 16 + 6)) << n << " columns";
  }
}

}  // namespace
}  // namespace vitqk
