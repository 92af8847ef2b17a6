#pragma once
// Deterministic random numbers (xoshiro256**, seeded by splitmix64): the same seed gives the
// same stream on every machine and compiler, and the state is four integers a checkpoint
// can store, so training resumes bit for bit.
#include <array>
#include <cstdint>

namespace vitqk {

struct Rng {
  std::array<uint64_t, 4> s;

  explicit Rng(uint64_t seed = 0);
  uint64_t next();
  uint32_t below(uint32_t n);  // uniform in [0, n), n > 0
  float uniform();             // [0, 1), 24 random bits
  float normal();              // N(0, 1), Box-Muller (one value per call: no hidden cache)
};

}  // namespace vitqk
