#pragma once
// This machine's fp32 FMA peak, measured: the machines vitqk is measured on differ from day to
// day, so speed is reported as a fraction of what this CPU can do right now.
#include <string>

namespace vitqk {

struct CpuInfo {
  std::string model;  // "model name" from /proc/cpuinfo
  bool avx512f = false, avx512vl = false, avx512_bf16 = false, avx2_fma = false;
};
CpuInfo cpu_info();

struct Peak {
  double gflops = 0;  // fp32, all `threads` together
  int threads = 0;
  std::string isa;  // "avx512", "avx2" or "scalar"
};

// Best of 3 runs of ~0.2 s of independent FMA chains (16 per thread), all threads in one
// OpenMP parallel region. AVX-512 when the CPU has it, else AVX2+FMA; the binary still runs
// on CPUs without either.
Peak measure_peak(int threads);

}  // namespace vitqk
