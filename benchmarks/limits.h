#pragma once
// What a kernel's speed is measured against, once per run: the FMA peak (compute-bound
// kernels) and the speed of copying the same bytes (kernels that make one pass over memory).
#include <benchmark/benchmark.h>

#include <chrono>
#include <vector>

namespace vitqk::micro {

double peak_flops();  // fp32, all threads, per second

// Bytes per second of memcpy over a buffer of this size (a pass over memory cannot beat it).
double copy_bytes_per_s(size_t bytes);

// Wall-clock seconds since construction (the kernels run on every thread, so CPU time of the
// benchmark's own thread says little).
struct Stopwatch {
  std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
  double seconds() const;
};

// Counters GFLOP/s and %peak from the FLOPs of one iteration.
void report_flops(benchmark::State& state, const Stopwatch& t, double flops_per_iteration);
// Counters GB/s and %copy from the bytes one iteration reads and writes.
void report_bytes(benchmark::State& state, const Stopwatch& t, double bytes_per_iteration);

std::vector<float> random_floats(size_t n, uint64_t seed, float scale = 1.0f);

}  // namespace vitqk::micro
