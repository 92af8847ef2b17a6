#include "core/rng.h"

#include <cmath>

namespace vitqk {

namespace {
uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
}  // namespace

Rng::Rng(uint64_t seed) {
  for (auto& v : s) {
    seed += 0x9e3779b97f4a7c15ULL;
    uint64_t z = seed;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    v = z ^ (z >> 31);
  }
}

uint64_t Rng::next() {
  const uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
  s[2] ^= s[0], s[3] ^= s[1], s[1] ^= s[2], s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return r;
}

uint32_t Rng::below(uint32_t n) {
  // Lemire's multiply-shift with rejection: unbiased.
  uint64_t m = uint64_t(uint32_t(next() >> 32)) * n;
  if (uint32_t(m) < n) {
    const uint32_t t = uint32_t(-n) % n;
    while (uint32_t(m) < t) m = uint64_t(uint32_t(next() >> 32)) * n;
  }
  return uint32_t(m >> 32);
}

float Rng::uniform() { return float(next() >> 40) * (1.0f / 16777216.0f); }

float Rng::normal() {
  const double u1 = (double(next() >> 11) + 1.0) * (1.0 / 9007199254740992.0);  // (0, 1]
  const double u2 = double(next() >> 11) * (1.0 / 9007199254740992.0);
  return float(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
}

}  // namespace vitqk
