#include "core/peak.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <fstream>

namespace vitqk {

CpuInfo cpu_info() {
  CpuInfo c;
  std::ifstream f("/proc/cpuinfo");
  for (std::string line; std::getline(f, line);) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string value = line.substr(std::min(line.size(), colon + 2));
    if (c.model.empty() && line.starts_with("model name")) c.model = value;
    if (line.starts_with("flags")) {
      const std::string flags = " " + value + " ";
      c.avx512f = flags.find(" avx512f ") != std::string::npos;
      c.avx512vl = flags.find(" avx512vl ") != std::string::npos;
      c.avx512_bf16 = flags.find(" avx512_bf16 ") != std::string::npos;
      c.avx2_fma = flags.find(" avx2 ") != std::string::npos && flags.find(" fma ") != std::string::npos;
      break;  // every core lists the same flags
    }
  }
  if (c.model.empty()) c.model = "unknown CPU";
  return c;
}

namespace {

// 16 independent chains acc = acc * a + b; a < 1 and b small keep every value near 1 (no
// denormals, no overflow). Returns a sum of the chains so nothing is optimised away.
// Each call does iters * 16 vector FMAs.
__attribute__((target("avx512f"))) float fma_avx512(long iters) {
  __m512 acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = _mm512_set1_ps(1.0f + i * 1e-3f);
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-6f);
  for (long it = 0; it < iters; ++it)
    for (int i = 0; i < 16; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  for (int i = 1; i < 16; ++i) acc[0] = _mm512_add_ps(acc[0], acc[i]);
  float lanes[16];
  _mm512_storeu_ps(lanes, acc[0]);
  float s = 0;
  for (float v : lanes) s += v;
  return s;
}

__attribute__((target("avx2,fma"))) float fma_avx2(long iters) {
  __m256 acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = _mm256_set1_ps(1.0f + i * 1e-3f);
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-6f);
  for (long it = 0; it < iters; ++it)
    for (int i = 0; i < 16; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  for (int i = 1; i < 16; ++i) acc[0] = _mm256_add_ps(acc[0], acc[i]);
  float lanes[8];
  _mm256_storeu_ps(lanes, acc[0]);
  float s = 0;
  for (float v : lanes) s += v;
  return s;
}

float fma_scalar(long iters) {
  float acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = 1.0f + i * 1e-3f;
  for (long it = 0; it < iters; ++it)
    for (int i = 0; i < 16; ++i) acc[i] = acc[i] * 0.999999f + 1e-6f;
  float s = 0;
  for (float v : acc) s += v;
  return s;
}

volatile float g_sink;

// Seconds for every thread to run `iters` iterations.
double timed(float (*kernel)(long), long iters, int threads) {
  const auto t0 = std::chrono::steady_clock::now();
  float sum = 0;
#pragma omp parallel num_threads(threads) reduction(+ : sum)
  sum += kernel(iters);
  const auto t1 = std::chrono::steady_clock::now();
  g_sink = sum;
  return std::chrono::duration<double>(t1 - t0).count();
}

}  // namespace

Peak measure_peak(int threads) {
  const CpuInfo cpu = cpu_info();
  Peak p;
  p.threads = std::max(1, threads);
  float (*kernel)(long) = fma_scalar;
  int lanes = 1;
  p.isa = "scalar";
  if (cpu.avx512f && __builtin_cpu_supports("avx512f")) kernel = fma_avx512, lanes = 16, p.isa = "avx512";
  else if (cpu.avx2_fma && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    kernel = fma_avx2, lanes = 8, p.isa = "avx2";

  // Calibrate to ~0.2 s per measurement, then keep the best of 3.
  long iters = 1 << 16;
  double t = timed(kernel, iters, p.threads);
  while (t < 0.02) iters *= 4, t = timed(kernel, iters, p.threads);
  iters = std::max(1L, long(double(iters) * 0.2 / t));
  const double flops = 2.0 * 16 * lanes * double(iters) * p.threads;
  for (int r = 0; r < 3; ++r) p.gflops = std::max(p.gflops, flops / timed(kernel, iters, p.threads) * 1e-9);
  return p;
}

}  // namespace vitqk
