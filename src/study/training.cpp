// Part 4 of the study: does training suffer? The three forms of the query-key pair trained on
// the same data, recipe, budget and seeds, then the singular-value spectra of what the merged
// ones learned.
#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "io/model_file.h"
#include "model/convert.h"
#include "study/study.h"
#include "study/variants.h"
#include "train/trainer.h"

namespace vitqk {

namespace {

std::string run_dir(const StudyOptions& o, const Variant& v, int seed) {
  return cat(o.out, "/runs/", v.name, "-seed", seed, "-e", o.epochs, "-n", o.limit_train ? o.limit_train : 0);
}

// The run's epoch records if it finished (all epochs logged and its model written).
std::vector<nlohmann::json> finished_history(const std::string& dir, int epochs) {
  std::vector<nlohmann::json> h;
  if (!std::filesystem::exists(dir + "/model.safetensors")) return {};
  std::ifstream in(dir + "/log.jsonl");
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) h.push_back(nlohmann::json::parse(line, nullptr, false));
  if (int(h.size()) != epochs) return {};
  for (const auto& r : h)
    if (r.is_discarded() || !r.contains("test_acc")) return {};
  return h;
}

struct Stats {
  double mean = 0, std = 0, min = 0, max = 0;
};
Stats stats(const std::vector<double>& v) {
  Stats s;
  if (v.empty()) return s;
  s.min = s.max = v[0];
  for (double x : v) s.mean += x, s.min = std::min(s.min, x), s.max = std::max(s.max, x);
  s.mean /= double(v.size());
  for (double x : v) s.std += (x - s.mean) * (x - s.mean);
  s.std = v.size() > 1 ? std::sqrt(s.std / double(v.size() - 1)) : 0.0;  // sample std over seeds
  return s;
}
nlohmann::json to_json(const Stats& s) { return {{"mean", s.mean}, {"std", s.std}, {"min", s.min}, {"max", s.max}}; }

// Spectra of every head's homogeneous query-key matrix B_h = [A_h; u_h^T] of a model, through
// the same SVD that unmerging uses. A factorized model is merged exactly first.
nlohmann::json spectra(const ViT& trained, const std::string& label) {
  const ViTConfig& c = trained.cfg;
  const std::vector<Form> merged(c.depth, Form::Merged), fact(c.depth, Form::Factorized);
  const ViT m = convert(trained, merged, c.ov);  // a copy if it is merged already
  std::vector<HeadReport> heads;
  convert(m, fact, c.ov, {}, &heads);
  const int dh = c.dim / c.heads;
  std::vector<double> mean_curve, rank99, numerical, err;
  for (const HeadReport& h : heads) {
    const auto& S = h.singular_values;
    if (mean_curve.empty()) mean_curve.assign(S.size(), 0.0);
    double total = 0;
    for (double s : S) total += s * s;
    double acc = 0;
    int r99 = 0;
    while (r99 < int(S.size()) && acc < 0.99 * total) acc += S[r99] * S[r99], ++r99;
    for (size_t i = 0; i < S.size(); ++i) mean_curve[i] += (S[0] > 0 ? S[i] / S[0] : 0.0) / double(heads.size());
    rank99.push_back(r99), numerical.push_back(h.numerical_rank), err.push_back(h.rel_error);
  }
  return {{"label", label},
          {"heads", heads.size()},
          {"d_h", dh},
          {"dim", c.dim},
          {"mean_normalized_spectrum", mean_curve},
          {"rank_for_99pct_energy", to_json(stats(rank99))},
          {"numerical_rank", to_json(stats(numerical))},
          {"rel_error_at_d_h", to_json(stats(err))}};
}

}  // namespace

nlohmann::json study_training(const StudyOptions& o, const DataSplits& data, const StageLog& log) {
  nlohmann::json variants = nlohmann::json::array();
  for (const Variant& v : study_variants()) {
    ViTConfig c = o.model;
    c.qk.assign(c.depth, v.qk);
    c.ov.assign(c.depth, Form::Factorized);
    nlohmann::json runs = nlohmann::json::array();
    std::vector<double> final_acc, final_loss, speed;
    for (int seed = 0; seed < o.seeds; ++seed) {
      const std::string dir = run_dir(o, v, seed);
      std::vector<nlohmann::json> h = finished_history(dir, o.epochs);
      const bool reused = !h.empty();
      if (reused) {
        log(cat("training ", v.label, ", seed ", seed, ": reusing the finished run in ", dir));
      } else {
        log(cat("training ", v.label, ", seed ", seed, " (", o.epochs, " epochs) -> ", dir));
        TrainOptions t;
        t.data = o.data;
        t.limit_train = o.limit_train, t.limit_test = o.limit_test;
        t.epochs = o.epochs, t.batch = o.batch;
        t.seed = uint64_t(seed);
        t.merged_init = v.init;
        t.out = dir;
        t.resume = true;  // an interrupted run continues where it stopped
        t.progress = o.progress;
        t.preloaded = &data;
        h = train(c, t);
      }
      double ips = 0;
      for (const auto& r : h) ips += r["images_per_s"].get<double>() / double(h.size());
      final_acc.push_back(h.back()["test_acc"]), final_loss.push_back(h.back()["test_loss"]), speed.push_back(ips);
      runs.push_back({{"seed", seed}, {"dir", dir}, {"reused", reused}, {"history", h}, {"images_per_s", ips}});
    }
    variants.push_back({{"name", v.name},
                        {"label", v.label},
                        {"qk", form_name(v.qk)},
                        {"merged_init", v.init == MergedInit::Random ? "random" : "product"},
                        {"params", ViT(c).params.size()},
                        {"runs", runs},
                        {"final_test_acc", to_json(stats(final_acc))},
                        {"final_test_loss", to_json(stats(final_loss))},
                        {"images_per_s", to_json(stats(speed))}});
  }
  nlohmann::json spec = nlohmann::json::array();
  for (const auto& v : variants) {
    const std::string dir = v["runs"][0]["dir"];
    log(cat("singular values of ", v["label"].get<std::string>(), " (seed 0)"));
    spec.push_back(spectra(io::load_model(dir + "/model.safetensors").model, v["label"]));
  }
  return {{"data", o.data},
          {"model", config_to_json(o.model)},
          {"epochs", o.epochs},
          {"batch", o.batch},
          {"lr", TrainOptions{}.opt.lr},
          {"seeds", o.seeds},
          {"limit_train", o.limit_train},
          {"limit_test", o.limit_test},
          {"variants", variants},
          {"spectra", spec}};
}

}  // namespace vitqk
