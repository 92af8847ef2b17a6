// Part 1 of the study: are the two forms the same function? Exact conversions of random
// models (every bias non-zero) and of trained ones, and the truncation that unmerging a model
// trained merged needs.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "core/rng.h"
#include "io/model_file.h"
#include "model/convert.h"
#include "study/study.h"
#include "train/data.h"
#include "train/init.h"
#include "train/trainer.h"

namespace vitqk {

namespace {

// Outputs of two models on the same batch: largest logit difference, agreement of the
// top-1 predictions, and accuracy of each when labels are given.
struct Agreement {
  double max_abs_diff = 0, max_abs_logit = 0, agree = 0, acc_a = 0, acc_b = 0;
  int images = 0;
};

Agreement compare(const ViT& a, const ViT& b, const std::vector<float>& pixels, const std::vector<int32_t>& labels,
                  int count) {
  const int K = a.cfg.num_classes, chunk = 128;
  const long in = long(a.cfg.in_chans) * a.cfg.image_size * a.cfg.image_size;
  Agreement r;
  r.images = count;
  Activations xa, xb;
  long agree = 0, right_a = 0, right_b = 0;
  for (int first = 0; first < count; first += chunk) {
    const int n = std::min(chunk, count - first);
    vit_forward(a, pixels.data() + first * in, n, xa);
    vit_forward(b, pixels.data() + first * in, n, xb);
    for (int i = 0; i < n; ++i) {
      const float *la = xa.logits + long(i) * K, *lb = xb.logits + long(i) * K;
      for (int k = 0; k < K; ++k)
        r.max_abs_diff = std::max(r.max_abs_diff, double(std::fabs(la[k] - lb[k]))),
        r.max_abs_logit = std::max(r.max_abs_logit, double(std::fabs(la[k])));
      const long pa = std::max_element(la, la + K) - la, pb = std::max_element(lb, lb + K) - lb;
      agree += pa == pb;
      if (!labels.empty()) right_a += pa == labels[first + i], right_b += pb == labels[first + i];
    }
  }
  r.agree = double(agree) / count;
  r.acc_a = double(right_a) / count, r.acc_b = double(right_b) / count;
  return r;
}

nlohmann::json to_json(const Agreement& r, bool labelled) {
  nlohmann::json j = {{"images", r.images},
                      {"max_abs_logit_diff", r.max_abs_diff},
                      {"max_abs_logit", r.max_abs_logit},
                      {"prediction_agreement", r.agree}};
  if (labelled) j["accuracy_before"] = r.acc_a, j["accuracy_after"] = r.acc_b;
  return j;
}

// A random model whose every parameter, biases included, is non-zero: timm's init plus
// N(0, 0.05) noise (so the bias folding is exercised, not skipped).
ViT random_model(ViTConfig c, uint64_t seed) {
  c.qk.assign(c.depth, Form::Factorized), c.ov.assign(c.depth, Form::Factorized);
  ViT m(c);
  init_params(m, seed);
  Rng rng(seed + 100);
  for (float& p : m.params) p += 0.05f * rng.normal();
  return m;
}

struct Batch {
  std::vector<float> pixels;
  std::vector<int32_t> labels;
  int count = 0;
};

Batch random_batch(const ViTConfig& c, int count, uint64_t seed) {
  Batch b;
  b.count = count;
  b.pixels.resize(size_t(count) * c.in_chans * c.image_size * c.image_size);
  Rng rng(seed);
  for (float& x : b.pixels) x = rng.normal();
  return b;
}

Batch test_batch(const Dataset& d, const ViTConfig& c, int count) {
  Batch b;
  b.count = std::min(count, d.count);
  std::vector<uint32_t> idx(b.count);
  std::iota(idx.begin(), idx.end(), 0u);
  b.pixels.resize(size_t(b.count) * c.in_chans * c.image_size * c.image_size);
  b.labels.resize(b.count);
  make_batch(d, idx.data(), b.count, Augment{false}, 0, 0, 0, c.preprocess, b.pixels.data(), b.labels.data());
  return b;
}

// Factorized -> merged (query-key and value-output) -> factorized again, on one batch.
nlohmann::json round_trip(const ViT& m, const Batch& b, const std::string& label) {
  const int L = m.cfg.depth;
  const std::vector<Form> fact(L, Form::Factorized), merged(L, Form::Merged);
  const ViT mqk = convert(m, merged, fact);
  const ViT mboth = convert(m, merged, merged);
  std::vector<HeadReport> report;
  const ViT back = convert(mboth, fact, fact, {}, &report);
  int worst_rank = 0;
  for (const HeadReport& h : report) worst_rank = std::max(worst_rank, h.numerical_rank);
  const bool labelled = !b.labels.empty();
  return {{"model", label},
          {"config", config_to_json(m.cfg)},
          {"params_factorized", m.params.size()},
          {"params_merged_qk", mqk.params.size()},
          {"params_merged_qk_ov", mboth.params.size()},
          {"merge_qk", to_json(compare(m, mqk, b.pixels, b.labels, b.count), labelled)},
          {"merge_qk_ov", to_json(compare(m, mboth, b.pixels, b.labels, b.count), labelled)},
          {"round_trip", to_json(compare(m, back, b.pixels, b.labels, b.count), labelled)},
          {"largest_numerical_rank", worst_rank},
          {"d_h", m.cfg.dim / m.cfg.heads}};
}

// A model trained merged, unmerged to d_h per head (all a factorized head can hold).
nlohmann::json unmerge_trained(const ViT& m, const Batch& b, const std::string& label) {
  const int L = m.cfg.depth;
  std::vector<HeadReport> report;
  const ViT back = convert(m, std::vector<Form>(L, Form::Factorized), m.cfg.ov, {}, &report);
  double worst = 0, mean = 0;
  int full = 0;
  for (const HeadReport& h : report) {
    worst = std::max(worst, h.rel_error), mean += h.rel_error / double(report.size());
    full = std::max(full, h.numerical_rank);
  }
  nlohmann::json j = to_json(compare(m, back, b.pixels, b.labels, b.count), true);
  j["model"] = label;
  j["d_h"] = m.cfg.dim / m.cfg.heads;
  j["largest_numerical_rank"] = full;
  j["rel_error_max"] = worst;
  j["rel_error_mean"] = mean;
  return j;
}

}  // namespace

nlohmann::json study_equivalence(const StudyOptions& o, const DataSplits& data, const nlohmann::json& training,
                                 const StageLog& log) {
  nlohmann::json random = nlohmann::json::array();
  for (const std::string& name : o.equivalence_models) {
    log(cat("converting a random ", name, " both ways"));
    const ViT m = random_model(preset(name), 7);
    random.push_back(round_trip(m, random_batch(m.cfg, 8, 9), name + " (random weights, non-zero biases)"));
  }
  const int images = std::min(data.test.count, o.quick ? 1000 : 10000);
  nlohmann::json trained = nlohmann::json::array(), unmerged = nlohmann::json::array();
  for (const auto& v : training["variants"]) {
    const std::string path = v["runs"][0]["dir"].get<std::string>() + "/model.safetensors";
    const ViT m = io::load_model(path).model;
    const Batch b = test_batch(data.test, m.cfg, images);
    const std::string label = v["label"].get<std::string>() + " (trained, seed 0)";
    log(cat("converting the trained ", v["label"].get<std::string>(), " model"));
    if (v["qk"] == "factorized")
      trained.push_back(round_trip(m, b, label));
    else
      unmerged.push_back(unmerge_trained(m, b, label));
  }
  return {{"random", random}, {"trained", trained}, {"unmerge_trained_merged", unmerged}};
}

}  // namespace vitqk
