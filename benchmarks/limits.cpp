#include "limits.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>

#include "core/peak.h"
#include "core/rng.h"
#include "core/threads.h"

namespace vitqk::micro {

double peak_flops() {
  static const double p = measure_peak(max_threads()).gflops * 1e9;
  return p;
}

double copy_bytes_per_s(size_t bytes) {
  static std::map<size_t, double> known;
  if (auto it = known.find(bytes); it != known.end()) return it->second;
  std::vector<char> a(bytes, 1), b(bytes);
  double best = 0;
  for (int r = 0; r < 50; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    std::memcpy(b.data(), a.data(), bytes);
    benchmark::DoNotOptimize(b.data());
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, 2.0 * double(bytes) / s);  // read + write
  }
  return known[bytes] = best;
}

double Stopwatch::seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void report_flops(benchmark::State& state, const Stopwatch& t, double flops) {
  const double per_s = double(state.iterations()) * flops / t.seconds();
  state.counters["GFLOP/s"] = per_s * 1e-9;
  state.counters["%peak"] = 100.0 * per_s / peak_flops();
}

void report_bytes(benchmark::State& state, const Stopwatch& t, double bytes) {
  const double per_s = double(state.iterations()) * bytes / t.seconds();
  state.counters["GB/s"] = per_s * 1e-9;
  state.counters["%copy"] = 100.0 * per_s / copy_bytes_per_s(size_t(bytes / 2));
}

std::vector<float> random_floats(size_t n, uint64_t seed, float scale) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (float& x : v) x = scale * rng.normal();
  return v;
}

}  // namespace vitqk::micro
