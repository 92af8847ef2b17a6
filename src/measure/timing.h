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

// Milliseconds of each of `runs` timed forward passes of a batch of B images (`pixels`, or
// random ones when null), after `warmup` untimed ones.
std::vector<double> time_forward(const ViT& m, int B, int runs, int warmup, const float* pixels = nullptr);
std::vector<double> time_forward(const PackedViT& m, int B, int runs, int warmup, const float* pixels = nullptr);

}  // namespace vitqk
