// The vectorised math against glibc, in ulps, over dense sweeps of every range it uses.
#include "core/vmath.h"

#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <vector>

namespace vitqk {
namespace {

// Distance in representable floats (same sign assumed or both near zero).
int64_t ulps(float a, float b) {
  auto key = [](float f) {
    const int32_t i = std::bit_cast<int32_t>(f);
    return i < 0 ? int64_t(INT32_MIN) - i : int64_t(i);
  };
  return std::llabs(key(a) - key(b));
}

// Floats of [lo, hi) spaced `count` apart in value, each nudged by a different number of
// ulps so the low mantissa bits vary too, through one vectorised loop as the ops use it.
template <class F, class R>
int64_t worst_ulps(float lo, float hi, int count, F f, R ref, float* where = nullptr) {
  std::vector<float> x;
  for (int i = 0; i < count; ++i) {
    const float v = lo + (hi - lo) * float(i) / float(count);
    x.push_back(std::bit_cast<float>(std::bit_cast<int32_t>(v) + int((int64_t(i) * 7919) % 4096)));
  }
  std::vector<float> y(x.size());
#pragma omp simd
  for (size_t i = 0; i < x.size(); ++i) y[i] = f(x[i]);
  int64_t w = 0;
  for (size_t i = 0; i < x.size(); ++i)
    if (ulps(y[i], ref(x[i])) > w) {
      w = ulps(y[i], ref(x[i]));
      if (where) *where = x[i];
    }
  return w;
}

TEST(VMath, ExpWithinTwoUlpsOfGlibc) {
  auto f = [](float v) { return vmath::exp(v); };
  auto ref = [](float v) { return std::exp(v); };
  float at = 0;
  EXPECT_LE(worst_ulps(-87.3f, 88.68f, 2000000, f, ref, &at), 2) << "at " << at;
  EXPECT_LE(worst_ulps(-1.0f, 1.0f, 1000000, f, ref), 2);
  EXPECT_EQ(vmath::exp(0.0f), 1.0f);
  EXPECT_EQ(vmath::exp(-200.0f), 0.0f);  // flushed, no subnormal slow path
  EXPECT_EQ(vmath::exp(-INFINITY), 0.0f);
  EXPECT_EQ(vmath::exp(89.0f), INFINITY);
  EXPECT_EQ(vmath::exp(INFINITY), INFINITY);
  EXPECT_TRUE(std::isnan(vmath::exp(NAN)));
  EXPECT_LE(ulps(vmath::exp(88.7f), std::exp(88.7f)), 2);  // 2^128 range
}

// Softmax, erf and GELU's backward rely on the short path being exp itself wherever x <= 0: every
// 997th float from -0 down to -100 (below the flush to zero), through one vectorised loop.
TEST(VMath, ExpNonpositiveIsExpBitForBit) {
  std::vector<float> x;
  for (uint32_t b = 0x80000000u; b <= std::bit_cast<uint32_t>(-100.0f); b += 997) x.push_back(std::bit_cast<float>(b));
  x.insert(x.end(), {-0.0f, 0.0f, -FLT_MIN, -87.99f, -88.0f, -88.01f, -INFINITY});
  std::vector<float> y(x.size());
#pragma omp simd
  for (size_t i = 0; i < x.size(); ++i) y[i] = vmath::exp_nonpositive(x[i]);
  for (size_t i = 0; i < x.size(); ++i)
    ASSERT_EQ(std::bit_cast<uint32_t>(y[i]), std::bit_cast<uint32_t>(vmath::exp(x[i]))) << "at " << x[i];
  EXPECT_TRUE(std::isnan(vmath::exp_nonpositive(NAN)));
  EXPECT_TRUE(std::isnan(vmath::exp_nonpositive(-NAN)));
}

TEST(VMath, ErfWithinTwoUlpsOfGlibc) {
  auto f = [](float v) { return vmath::erf(v); };
  auto ref = [](float v) { return std::erf(v); };
  float at = 0;
  EXPECT_LE(worst_ulps(-6.0f, 6.0f, 2000000, f, ref, &at), 2) << "at " << at;
  EXPECT_LE(worst_ulps(-1e-3f, 1e-3f, 100000, f, ref), 2);  // tiny arguments: erf(z) ~ 2z/sqrt(pi)
  EXPECT_EQ(vmath::erf(0.0f), 0.0f);
  EXPECT_EQ(vmath::erf(50.0f), 1.0f);
  EXPECT_EQ(vmath::erf(-INFINITY), -1.0f);
  EXPECT_TRUE(std::isnan(vmath::erf(NAN)));
}

TEST(VMath, NormalCdfKeepsRelativePrecisionInTheLeftTail) {
  auto f = [](float v) { return vmath::normal_cdf(v); };
  auto ref = [](float v) { return float(0.5 * std::erfc(-double(v) / std::sqrt(2.0))); };
  float at = 0;
  // Relative, so the left tail counts; rounding x / sqrt(2) to float alone is worth 4 ulps
  // near x = -1.4 (GELU, x Phi(x), is off by 3e-8 absolute there).
  EXPECT_LE(worst_ulps(-12.0f, 8.0f, 2000000, f, ref, &at), 8) << "at " << at;
}

}  // namespace
}  // namespace vitqk
