// GELU and its derivative against float64 over the whole float range that matters: every
// 1/64 from -14 to 14 (where Phi underflows to subnormals and then 0 on the left), zero, and
// the signs of tiny inputs.
#include "ops/gelu.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cmath>
#include <cstdio>
#include <vector>

#include "core/rng.h"
#include "core/vmath.h"

namespace vitqk {
namespace {

double cdf(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }
double pdf(double x) { return std::exp(-0.5 * x * x) / std::sqrt(2.0 * M_PI); }

std::vector<float> inputs() {
  std::vector<float> x;
  for (int i = -14 * 64; i <= 14 * 64; ++i) x.push_back(float(i) / 64.0f);
  for (float t : {1e-30f, -1e-30f, 1e-7f, -1e-7f, 3.5f / 3.0f, -3.5f / 3.0f}) x.push_back(t);
  return x;
}

TEST(Gelu, ForwardAndBackwardMatchFloat64) {
  const std::vector<float> x = inputs();
  const long n = long(x.size());
  std::vector<float> y(x.size()), dy(x.size()), dx(x.size());
  for (size_t i = 0; i < x.size(); ++i) dy[i] = 1.0f + 0.25f * float(i % 7);
  gelu_forward(y.data(), x.data(), n);
  gelu_backward(dx.data(), x.data(), y.data(), dy.data(), n);
  double worst_y = 0, worst_dx = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double xi = x[i], want_y = xi * cdf(xi), want_dx = dy[i] * (cdf(xi) + xi * pdf(xi));
    // Relative to the result, or for the derivative to its two terms (they cancel near
    // x = -0.75), plus a floor (1e-30) under which float is near its subnormals.
    const double terms = dy[i] * (cdf(xi) + std::fabs(xi) * pdf(xi));
    worst_y = std::max(worst_y, std::fabs(y[i] - want_y) / (std::fabs(want_y) + 1e-30));
    worst_dx = std::max(worst_dx, std::fabs(dx[i] - want_dx) / (terms + 1e-30));
  }
  std::printf("[ info ] max relative error: gelu %.3g, derivative %.3g\n", worst_y, worst_dx);
  // erfc's tail fit is good to 3e-7 in float arithmetic (vmath.h); the derivative adds an exp
  // (2 ulp) and the quotient y / x (1 ulp).
  EXPECT_LT(worst_y, 6e-7);
  EXPECT_LT(worst_dx, 6e-7);
}

// The forward runs Phi's near and far sides on separate lanes (packing the far ones densely):
// every element must still be x * normal_cdf(x) to the bit, in place or not, over lengths that
// end mid-vector and span several blocks, with the boundary |x| = sqrt 2, NaN and infinities.
TEST(Gelu, ForwardIsXTimesNormalCdfBitForBit) {
  std::vector<float> x;
  Rng rng(11);
  for (int i = 0; i < 2500; ++i) x.push_back(rng.normal() * (i % 3 == 0 ? 3.0f : 0.8f));
  for (float t : {1.41421356f, -1.41421356f, std::nextafter(1.41421356f, 2.0f), std::nextafter(-1.41421356f, -2.0f),
                  INFINITY, -INFINITY, NAN, 0.0f, -0.0f, 40.0f, -40.0f})
    x.insert(x.begin() + long(rng.below(uint32_t(x.size()))), t);
  for (long n : {long(x.size()), 1L, 17L, 1024L, 1040L}) {
    std::vector<float> y(n), inplace(x.begin(), x.begin() + n);
    gelu_forward(y.data(), x.data(), n);
    gelu_forward(inplace.data(), inplace.data(), n);
    for (long i = 0; i < n; ++i) {
      const float want = x[i] * vmath::normal_cdf(x[i]);
      ASSERT_EQ(std::bit_cast<uint32_t>(y[i]), std::bit_cast<uint32_t>(want)) << "x = " << x[i] << " at " << i;
      ASSERT_EQ(std::bit_cast<uint32_t>(inplace[i]), std::bit_cast<uint32_t>(want)) << "in place, x = " << x[i];
    }
  }
}

TEST(Gelu, BackwardInPlace) {
  const std::vector<float> x = inputs();
  const long n = long(x.size());
  std::vector<float> y(x.size()), g(x.size(), 1.5f), separate(x.size());
  gelu_forward(y.data(), x.data(), n);
  gelu_backward(separate.data(), x.data(), y.data(), g.data(), n);
  gelu_backward(g.data(), x.data(), y.data(), g.data(), n);
  EXPECT_EQ(g, separate);
}

}  // namespace
}  // namespace vitqk
