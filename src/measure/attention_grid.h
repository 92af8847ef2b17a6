#pragma once
// One attention layer timed in both query-key forms over a grid of shapes, beside the cost
// model's prediction: does the cost model pick the faster form? Behind
// `vitqk bench --attention-grid` and part 3 of the study.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace vitqk {

struct AttentionShape {
  int D, H, n;
};

// quick: 10 points (single-head, wide-head and ViT-Ti/S/B/L shapes); else 41.
std::vector<AttentionShape> attention_grid(bool quick);

struct AttentionTiming {
  AttentionShape s;
  double factorized_ms, merged_ms;  // median per layer call, one image
  double measured_ratio;            // merged / factorized time
  double predicted_ratio;           // merged / factorized MACs (cost model)
  bool clear;                       // the two times differ by more than 10%
  bool right;                       // the cost model names the faster form
  nlohmann::json to_json() const;
};

// Each measurement repeats a layer for about target_ms; the two forms alternate so that a
// change of machine load hits both alike.
AttentionTiming time_attention(const AttentionShape& s, double target_ms, int measurements, uint64_t seed);

struct GridScore {
  int decided = 0, right = 0;       // points with a clear winner, and those predicted right
  std::vector<std::string> wrong;   // "D=.. H=.. n=.." of the mispredicted ones
  double accuracy() const { return decided ? double(right) / decided : 1.0; }
};
GridScore score(const std::vector<AttentionTiming>& t);

}  // namespace vitqk
