// Row softmax against float64, on widths around the 16-float vector (the row maximum reads the
// last partial vector under a mask) and on attention's widths (50 and 197 tokens).
#include "ops/softmax.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace vitqk {
namespace {

TEST(Softmax, MatchesFloat64AtEveryWidth) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 4.0f);
  for (int cols : {1, 2, 15, 16, 17, 31, 33, 50, 64, 197, 300}) {
    const int rows = 5;
    std::vector<float> x(size_t(rows) * cols);
    for (float& v : x) v = normal(rng);
    // The largest score of row 0 in its last position, inside the masked tail when there is
    // one: a maximum that missed it would leave e^(x - max) above 1, even infinite.
    x[size_t(cols) - 1] = 60.0f;
    std::vector<float> y = x;
    softmax_rows(y.data(), rows, cols);
    for (int i = 0; i < rows; ++i) {
      const float* xi = &x[size_t(i) * cols];
      const double mx = *std::max_element(xi, xi + cols);
      double sum = 0;
      for (int j = 0; j < cols; ++j) sum += std::exp(double(xi[j]) - mx);
      for (int j = 0; j < cols; ++j) {
        const double want = std::exp(double(xi[j]) - mx) / sum;
        // exp within 2 ulp, a float sum of up to 300 terms, one division: a few 1e-7 relative.
        EXPECT_NEAR(y[size_t(i) * cols + j], want, 2e-6 * want + 1e-30) << cols << " columns, row " << i << ", " << j;
      }
    }
  }
}

// A NaN score poisons its row, as in PyTorch, instead of being skipped by the maximum and
// leaving finite probabilities that do not sum to 1; other rows are untouched.
TEST(Softmax, NanPoisonsOnlyItsRow) {
  std::vector<float> x(2 * 20, 0.5f);
  x[19] = NAN;
  softmax_rows(x.data(), 2, 20);
  for (int j = 0; j < 20; ++j) {
    EXPECT_TRUE(std::isnan(x[j])) << j;
    EXPECT_FLOAT_EQ(x[20 + j], 1.0f / 20) << j;
  }
}

}  // namespace
}  // namespace vitqk
