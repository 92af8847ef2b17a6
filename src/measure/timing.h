#pragma once
// Wall-clock measurement shared by `vitqk bench` and the study: medians of repeated runs,
// peak resident memory, and the machine a figure was measured on.
#include <chrono>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/peak.h"
#include "model/vit.h"

namespace vitqk {

using Clock = std::chrono::steady_clock;

inline double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

double median(std::vector<double> v);
double peak_rss_mib();  // of this process so far

nlohmann::json machine_json(const CpuInfo& cpu, const Peak& p);

// Milliseconds of each of `runs` timed forward passes of a random batch of B images, after
// `warmup` untimed ones.
std::vector<double> time_forward(const ViT& m, int B, int runs, int warmup);

}  // namespace vitqk
