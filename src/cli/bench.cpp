// vitqk bench: the speed of a whole model (vit_forward) as a fraction of this machine's
// measured FMA peak, or, with --attention-grid, one attention layer in both query-key forms
// over a grid of shapes, checked against the cost model's prediction.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "core/error.h"
#include "core/peak.h"
#include "core/threads.h"
#include "measure/attention_grid.h"
#include "measure/timing.h"
#include "model/convert.h"
#include "model/cost.h"
#include "train/init.h"

namespace vitqk::cli {

namespace {

void print_machine(const CpuInfo& cpu, const Peak& p) {
  std::printf("machine: %s, %d threads, avx512f %s, avx512_bf16 %s; measured fp32 FMA peak %.0f GFLOP/s (%s)\n",
              cpu.model.c_str(), p.threads, cpu.avx512f ? "yes" : "no", cpu.avx512_bf16 ? "yes" : "no", p.gflops,
              p.isa.c_str());
}

std::string forms_name(const std::vector<Form>& f) {
  if (f.empty()) return "none";
  for (Form x : f)
    if (x != f[0]) return "mixed";
  return form_name(f[0]);
}

// ---- whole model -------------------------------------------------------------------------

struct ModelBench {
  ModelFlags model;
  std::string preset_name;
  int batch = 1, runs = 10, warmup = 2;
};

ViT bench_model(const ModelBench& o) {
  if (o.model.path.empty() == o.preset_name.empty()) fail("bench: give exactly one of --model and --preset");
  if (!o.model.path.empty()) return o.model.load().model;
  ViTConfig c = preset(o.preset_name);
  if (o.model.opts.heads) c.heads = o.model.opts.heads;
  if (o.model.opts.eps > 0) c.eps = o.model.opts.eps;
  c.validate("--preset " + o.preset_name);
  c.qk = choose_forms(c, o.model.attention, true);
  c.ov = choose_forms(c, o.model.ov, false);
  ViT m(c);
  init_params(m, 1);  // random weights (timm's init); the merged pairs are exact products
  return m;
}

void run_model_bench(const ModelBench& o, bool json) {
  const ViT m = bench_model(o);
  const ViTConfig& c = m.cfg;
  const CpuInfo cpu = cpu_info();
  const Peak peak = measure_peak(max_threads());

  const std::vector<double> times = time_forward(m, o.batch, o.runs, o.warmup);
  const double ms = median(times);
  const int64_t macs = model_cost(c).total().macs;
  const double gflops = 2.0 * double(macs) * o.batch / (ms * 1e-3) * 1e-9;
  const double images_per_s = o.batch / (ms * 1e-3), fraction = gflops / peak.gflops, rss = peak_rss_mib();
  const std::string name = o.preset_name.empty() ? o.model.path : o.preset_name;

  if (json) {
    nlohmann::json j = {{"model", name},
                        {"qk", forms_name(c.qk)},
                        {"ov", forms_name(c.ov)},
                        {"batch", o.batch},
                        {"runs", o.runs},
                        {"warmup", o.warmup},
                        {"macs_per_image", macs},
                        {"median_ms", ms},
                        {"min_ms", *std::min_element(times.begin(), times.end())},
                        {"images_per_s", images_per_s},
                        {"gflops", gflops},
                        {"peak_gflops", peak.gflops},
                        {"peak_fraction", fraction},
                        {"peak_rss_mib", rss},
                        {"threads", peak.threads},
                        {"machine", machine_json(cpu, peak)}};
    std::cout << j.dump(2) << "\n";
    return;
  }
  print_machine(cpu, peak);
  std::printf("%s: query-key %s, value-output %s, batch %d, %.2f GMACs per image\n", name.c_str(),
              forms_name(c.qk).c_str(), forms_name(c.ov).c_str(), o.batch, double(macs) * 1e-9);
  std::printf("median %.2f ms per batch over %d runs (after %d warm-up): %.1f images/s\n", ms, o.runs, o.warmup,
              images_per_s);
  std::printf("%.1f GFLOP/s = %.0f%% of the measured peak; peak RSS %.0f MiB\n", gflops, 100 * fraction, rss);
}

// ---- one attention layer in both query-key forms ------------------------------------------

void run_attention_grid(bool quick, bool json) {
  const CpuInfo cpu = cpu_info();
  const Peak peak = measure_peak(max_threads());
  const double target_ms = quick ? 15 : 25;
  const int measurements = quick ? 3 : 7;
  const auto t_start = Clock::now();
  if (!json) {
    print_machine(cpu, peak);
    std::printf("One attention layer (input projection + attention + output projection, one image), value-output\n"
                "factorized; ratio = merged / factorized time. \"predicted\" is the cost model's MAC ratio.\n\n");
    std::printf("%5s %3s %4s %10s %10s %9s %9s %10s %10s  %s\n", "D", "H", "n", "fact ms", "merged ms", "measured",
                "predicted", "pred fast", "meas fast", "right");
  }
  std::vector<AttentionTiming> timings;
  nlohmann::json points = nlohmann::json::array();
  for (const AttentionShape& g : attention_grid(quick)) {
    const AttentionTiming& t = timings.emplace_back(time_attention(g, target_ms, measurements, 3));
    points.push_back(t.to_json());
    if (!json)
      std::printf("%5d %3d %4d %10.3f %10.3f %9.3f %9.3f %10s %10s  %s\n", g.D, g.H, g.n, t.factorized_ms,
                  t.merged_ms, t.measured_ratio, t.predicted_ratio, t.predicted_ratio < 1 ? "merged" : "factorized",
                  t.measured_ratio < 1 ? "merged" : "factorized",
                  t.right ? (t.clear ? "yes" : "yes (within 10%)") : (t.clear ? "NO" : "no (within 10%)"));
  }
  const GridScore sc = score(timings);
  const int decided = sc.decided, right = sc.right;
  const std::vector<std::string>& wrong = sc.wrong;
  const double accuracy = sc.accuracy();
  const double seconds = ms_since(t_start) * 1e-3;
  if (json) {
    nlohmann::json j = {{"points", points},        {"decided", decided},
                        {"right", right},          {"accuracy", accuracy},
                        {"mispredicted", wrong},   {"threads", peak.threads},
                        {"seconds", seconds},      {"machine", machine_json(cpu, peak)}};
    std::cout << j.dump(2) << "\n";
    return;
  }
  std::printf("\nThe cost model picked the faster form at %d of the %d points where the forms differ by more than 10%% "
              "(%.0f%%)%s\n",
              right, decided, 100 * accuracy, wrong.empty() ? "." : ";");
  for (const auto& w : wrong) std::printf("  mispredicted: %s\n", w.c_str());
  std::printf("(%.0f s)\n", seconds);
}

}  // namespace

void add_bench(CLI::App& root) {
  auto* app = root.add_subcommand("bench", "Time a model (share of this CPU's FMA peak), or attention forms over a grid");
  static ModelBench o;
  static ThreadFlag threads;
  static bool json = false, grid_mode = false, quick = false;
  o.model.add(app, false);
  app->add_option("-p,--preset", o.preset_name, "A named model with random weights: vit-ti16, vit-s16, vit-b16, vit-l16, fmnist");
  app->add_option("-b,--batch", o.batch, "Images per forward pass")->capture_default_str()->check(CLI::Range(1, 4096));
  app->add_option("--runs", o.runs, "Timed runs (the median is reported)")->capture_default_str()->check(CLI::Range(1, 100000));
  app->add_option("--warmup", o.warmup, "Untimed runs first")->capture_default_str()->check(CLI::Range(0, 100000));
  threads.add(app);
  app->add_flag("--attention-grid", grid_mode,
                "Instead of a model: one attention layer, factorized vs merged query-key, over a grid of D, H, n");
  app->add_flag("--quick", quick, "With --attention-grid: fewer points and repetitions (~15 s)");
  app->add_flag("--json", json, "Print JSON");
  app->callback([] {
    threads.apply();
    if (grid_mode) {
      if (!o.model.path.empty() || !o.preset_name.empty()) fail("bench: --attention-grid takes no --model or --preset");
      run_attention_grid(quick, json);
    } else {
      if (quick) fail("bench: --quick goes with --attention-grid");
      run_model_bench(o, json);
    }
  });
}

}  // namespace vitqk::cli
