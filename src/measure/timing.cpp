#include "measure/timing.h"

#include <sys/resource.h>

#include <algorithm>

#include "core/rng.h"

namespace vitqk {

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

nlohmann::json machine_json(const CpuInfo& cpu, const Peak& p) {
  return {{"cpu", cpu.model},       {"threads", p.threads},       {"avx512f", cpu.avx512f},
          {"avx512_bf16", cpu.avx512_bf16}, {"peak_isa", p.isa}, {"peak_gflops", p.gflops}};
}

namespace {

template <class Model>
std::vector<double> timed_forward(const Model& m, int B, int runs, int warmup, const float* given) {
  const ViTConfig& c = m.cfg;
  std::vector<float> random;
  if (!given) {
    random.resize(size_t(B) * c.in_chans * c.image_size * c.image_size);
    Rng rng(2);
    for (float& x : random) x = rng.normal();
  }
  const float* pixels = given ? given : random.data();
  Activations a;
  for (int i = 0; i < warmup; ++i) vit_forward(m, pixels, B, a);
  std::vector<double> times;
  for (int i = 0; i < runs; ++i) {
    const auto t0 = Clock::now();
    vit_forward(m, pixels, B, a);
    times.push_back(ms_since(t0));
  }
  return times;
}

}  // namespace

std::vector<double> time_forward(const ViT& m, int B, int runs, int warmup, const float* pixels) {
  return timed_forward(m, B, runs, warmup, pixels);
}

std::vector<double> time_forward(const PackedViT& m, int B, int runs, int warmup, const float* pixels) {
  return timed_forward(m, B, runs, warmup, pixels);
}

}  // namespace vitqk
