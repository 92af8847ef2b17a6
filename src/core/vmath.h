#pragma once
// Float exp, erf and the normal CDF written without branches, so that loops under
// `#pragma omp simd` compile to vector code (AVX-512 here), within 2 ulp of glibc's expf and
// erff (tests/core/vmath_test.cpp). glibc's scalar calls were most of the time of softmax and
// GELU, and expf takes a slow path for subnormal results; here exp flushes results below
// FLT_MIN (x < -87.34) to zero: a softmax term that small is invisible beside the row's 1.
#include <bit>
#include <cmath>
#include <cstdint>

namespace vitqk::vmath {

namespace detail {

// e^x = 2^n p for x in [-88, 88.73], n returned in `n`. n = round(x / ln 2) leaves
// |r| <= ln(2)/2 in e^x = 2^n e^r; ln 2 in two parts (Cody-Waite) keeps r exact to a few ulp.
// Adding 1.5 * 2^23 rounds to an integer in the low mantissa bits.
[[gnu::always_inline]] inline float exp_reduced(float x, int32_t& n) {
  constexpr float shifter = 12582912.0f;
  const float kn = std::fma(x, 1.44269504f, shifter);
  n = std::bit_cast<int32_t>(kn) - std::bit_cast<int32_t>(shifter);
  const float k = kn - shifter;
  float r = std::fma(-k, 0.693359375f, x);  // ln 2 high part: 9 bits, so k * it is exact
  r = std::fma(-k, -2.12194440e-4f, r);      // the rest of ln 2
  // Taylor to r^7: the truncation is below 1e-8 relative on |r| <= 0.347.
  float p = 1.0f / 5040;
  p = std::fma(p, r, 1.0f / 720);
  p = std::fma(p, r, 1.0f / 120);
  p = std::fma(p, r, 1.0f / 24);
  p = std::fma(p, r, 1.0f / 6);
  p = std::fma(p, r, 0.5f);
  p = std::fma(p, r, 1.0f);
  return std::fma(p, r, 1.0f);
}

constexpr float kExpLo = -88.0f;  // below it, 2^n is 2^-127, whose bit pattern below is 0: e^x = 0

}  // namespace detail

#pragma omp declare simd notinbranch
inline float exp(float x) {
  // Clamped with compare-selects that compile to single max/min instructions.
  constexpr float hi = 88.72283f;  // ln(FLT_MAX)
  float xc = x > detail::kExpLo ? x : detail::kExpLo;
  xc = xc < hi ? xc : hi;
  int32_t n;
  const float p = detail::exp_reduced(xc, n);
  // 2^n as a float, n in [-127, 128]; 2^128 is out of range, so that case is 2^127 * 2.
  const int32_t e = n + 127;
  const float scale = std::bit_cast<float>((e < 254 ? e : 254) << 23);
  const float y = p * scale * (e > 254 ? 2.0f : 1.0f);
  const float inf = std::bit_cast<float>(0x7f800000);
  return x > hi ? inf : (x == x ? y : x);
}

// exp(x) for x <= 0 or NaN, bit for bit, without the overflow and special-case selects that only
// positive x need: about a third fewer instructions for softmax's shifted scores, erfc's e^(-z^2)
// and GELU's e^(-x^2/2), which are never positive. NaN passes through the clamp into the result.
#pragma omp declare simd notinbranch
inline float exp_nonpositive(float x) {
  const float xc = x < detail::kExpLo ? detail::kExpLo : x;
  int32_t n;
  const float p = detail::exp_reduced(xc, n);
  return p * std::bit_cast<float>(uint32_t(n + 127) << 23);  // n + 127 in [0, 127]
}

namespace detail {

// erf(z) / z as a polynomial in z^2 on |z| <= 1 (relative error 1.2e-9, fitted by least
// squares on Chebyshev nodes).
#pragma omp declare simd notinbranch
inline float erf_over_z(float z2) {
  float p = 7.853851809107304e-05f;
  p = std::fma(p, z2, -0.0008010190734553391f);
  p = std::fma(p, z2, 0.005188327356684674f);
  p = std::fma(p, z2, -0.026853811762113766f);
  p = std::fma(p, z2, 0.11283585144474936f);
  p = std::fma(p, z2, -0.3761262582386863f);
  return std::fma(p, z2, 1.1283791657266578f);
}

// erfc(a) for a >= 1 as exp(-a^2) Q(t), t = 1 / (1 + a/2), Q fitted on [1, 9.5] (relative
// error 5e-9 in exact arithmetic, 3e-7 in float); past 9.4 exp(-a^2) is below FLT_MIN.
// a^2 comes as s + d, s rounded and d its rounding error: exp(-(s + d)) = exp(-s) (1 - d)
// restores the precision that rounding a^2 loses (36 ulps of the result at a = 8).
#pragma omp declare simd notinbranch
inline float erfc_tail(float a, float s, float d) {
  const float t = 1.0f / (1.0f + 0.5f * a);
  float q = 0.07881710678339005f;
  q = std::fma(q, t, -0.17806006968021393f);
  q = std::fma(q, t, 0.015023433603346348f);
  q = std::fma(q, t, 0.11338157206773758f);
  q = std::fma(q, t, 0.154124915599823f);
  q = std::fma(q, t, 0.2541539669036865f);
  q = std::fma(q, t, 0.28077271580696106f);
  q = std::fma(q, t, 0.28222161531448364f);
  q = std::fma(q, t, -5.0610419748409186e-06f);
  const float e = vmath::exp_nonpositive(-s);
  return std::fma(-e, d, e) * q;
}

// The rounding error of s = z * z for erfc_tail; zero where z * z overflows (inf - inf would
// be NaN, and erfc is 0 there anyway).
#pragma omp declare simd notinbranch
inline float square_error(float z, float s) {
  const float zc = z > 1e15f ? 1e15f : (z < -1e15f ? -1e15f : z);
  return s == zc * zc ? std::fma(zc, zc, -s) : 0.0f;
}

}  // namespace detail

#pragma omp declare simd notinbranch
inline float erf(float z) {
  const float a = z < 0 ? -z : z, s = z * z;
  const float small = z * detail::erf_over_z(s);
  const float big = 1.0f - detail::erfc_tail(a, s, detail::square_error(z, s));
  return a < 1.0f ? small : (z < 0 ? -big : big);
}

// 1 / sqrt 2, which takes x to z = x / sqrt 2 in Phi(x) (and in gelu_forward's lane test).
inline constexpr float kInvSqrt2 = 0.70710678118654752440f;

// Phi(x) = (1 + erf(x / sqrt 2)) / 2 in two pieces, the near side (|z| < 1, z = x / sqrt 2: a
// polynomial) and the far side (erfc: an exp and a division, most of the cost), which a caller
// that sorts its lanes by this test may run apart (gelu_forward, whose 16-lane copy of the test
// must stay the same); normal_cdf selects.
#pragma omp declare simd notinbranch
inline bool normal_cdf_is_near(float x) {
  const float z = x * kInvSqrt2;
  return (z < 0 ? -z : z) < 1.0f;  // false for NaN
}

#pragma omp declare simd notinbranch
inline float normal_cdf_near(float x) {
  const float z = x * kInvSqrt2;
  return std::fma(0.5f * z, detail::erf_over_z(z * z), 0.5f);  // fused: cancels near z = -1
}

// erfc(|z|) / 2 on the far side, so it keeps its relative precision for negative x (where
// 1 + erf cancels).
#pragma omp declare simd notinbranch
inline float normal_cdf_far(float x) {
  const float z = x * kInvSqrt2;
  const float a = z < 0 ? -z : z;
  // z^2 = x^2 / 2 from x itself: rounding z first would cost 140 ulps at x = -12.
  const float s = 0.5f * (x * x), d = 0.5f * detail::square_error(x, 2.0f * s);
  const float c = 0.5f * detail::erfc_tail(a, s, d);
  return z < 0 ? c : 1.0f - c;
}

#pragma omp declare simd notinbranch
inline float normal_cdf(float x) { return normal_cdf_is_near(x) ? normal_cdf_near(x) : normal_cdf_far(x); }

}  // namespace vitqk::vmath
