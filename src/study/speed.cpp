// Part 3 of the study: which form is faster? One attention layer over a grid of shapes, and
// whole models, each measured in both forms beside the cost model's prediction.
#include "core/error.h"
#include "core/peak.h"
#include "core/threads.h"
#include "measure/attention_grid.h"
#include "measure/timing.h"
#include "model/convert.h"
#include "model/cost.h"
#include "study/study.h"
#include "train/init.h"

namespace vitqk {

nlohmann::json study_speed(const StudyOptions& o, const StageLog& log) {
  const CpuInfo cpu = cpu_info();
  const Peak peak = measure_peak(max_threads());
  log(cat("timing one attention layer in both forms over ", o.grid.size(), " shapes"));
  std::vector<AttentionTiming> ts;
  nlohmann::json points = nlohmann::json::array();
  for (const AttentionShape& s : o.grid) {
    ts.push_back(time_attention(s, o.quick ? 15 : 25, o.quick ? 3 : 7, 3));
    points.push_back(ts.back().to_json());
  }
  const GridScore sc = score(ts);

  nlohmann::json models = nlohmann::json::array();
  for (const std::string& name : o.speed_models) {
    log(cat("timing ", name, " in both forms"));
    const ViTConfig base = preset(name);
    const int batch = name == "fmnist" ? 64 : 1;  // the small model is only worth timing in batches
    // Both forms built first, then timed in alternation: a change of machine load hits both.
    ViT fact(with_forms(base, Form::Factorized, Form::Factorized));
    init_params(fact, 1);
    const ViT merged = convert(fact, std::vector<Form>(base.depth, Form::Merged), fact.cfg.ov);
    std::vector<double> tf, tm;
    for (int r = 0; r < o.speed_runs; ++r) {
      const std::vector<double> a = time_forward(fact, batch, 1, r == 0), b = time_forward(merged, batch, 1, r == 0);
      tf.push_back(a[0]), tm.push_back(b[0]);
    }
    nlohmann::json forms;
    for (auto [m, t] : {std::pair<const ViT*, const std::vector<double>*>{&fact, &tf}, {&merged, &tm}}) {
      const double ms = median(*t);
      const int64_t macs = forward_cost(m->cfg).total().macs;
      forms[form_name(m->cfg.qk[0])] = {{"median_ms", ms},
                                        {"images_per_s", batch / (ms * 1e-3)},
                                        {"macs_per_image", macs},
                                        {"gflops", 2.0 * double(macs) * batch / (ms * 1e-3) * 1e-9}};
    }
    const double measured = forms["merged"]["median_ms"].get<double>() / forms["factorized"]["median_ms"].get<double>();
    const double predicted =
        forms["merged"]["macs_per_image"].get<double>() / forms["factorized"]["macs_per_image"].get<double>();
    models.push_back({{"model", name},
                      {"batch", batch},
                      {"runs", o.speed_runs},
                      {"factorized", forms["factorized"]},
                      {"merged", forms["merged"]},
                      {"measured_time_ratio", measured},
                      {"predicted_time_ratio", predicted}});
  }
  return {{"machine", machine_json(cpu, peak)},
          {"attention_layer",
           {{"points", points}, {"decided", sc.decided}, {"right", sc.right}, {"mispredicted", sc.wrong}}},
          {"models", models}};
}

}  // namespace vitqk
