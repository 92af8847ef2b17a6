// vitqk bench: the speed of a whole model (vit_forward) as a fraction of this machine's
// measured FMA peak; with --train, of training steps (data-parallel under mpirun); or, with
// --attention-grid, one attention layer in both query-key forms
// over a grid of shapes, checked against the cost model's prediction.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "core/error.h"
#include "core/peak.h"
#include "core/rng.h"
#include "core/threads.h"
#include "dist/comm.h"
#include "model/convert.h"
#include "model/cost.h"
#include "ops/attention.h"
#include "ops/linear.h"
#include "train/init.h"
#include "train/trainer.h"

namespace vitqk::cli {

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

double median(std::vector<double> v) {
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

void fill_normal(std::vector<float>& v, Rng& rng, float std) {
  for (float& x : v) x = std * rng.normal();
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

  std::vector<float> pixels(size_t(o.batch) * c.in_chans * c.image_size * c.image_size);
  Rng rng(2);
  fill_normal(pixels, rng, 1.0f);
  Activations a;
  for (int i = 0; i < o.warmup; ++i) vit_forward(m, pixels.data(), o.batch, a);
  std::vector<double> times;
  for (int i = 0; i < o.runs; ++i) {
    const auto t0 = Clock::now();
    vit_forward(m, pixels.data(), o.batch, a);
    times.push_back(ms_since(t0));
  }
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

// ---- training steps, data-parallel under mpirun -------------------------------------------

void run_train_bench(const ModelBench& o, bool json) {
  const ViTConfig c = bench_model(o).cfg;
  const TrainBench r = bench_training(c, o.batch, o.runs, o.warmup);
  if (dist::world().rank() != 0) return;
  const std::string name = o.preset_name.empty() ? o.model.path : o.preset_name;
  const double mb = double(r.params) * sizeof(float) * 1e-6, share = r.allreduce_s / r.step_s;
  if (json) {
    nlohmann::json j = {{"model", name},
                        {"qk", forms_name(c.qk)},
                        {"ov", forms_name(c.ov)},
                        {"params", r.params},
                        {"processes", r.ranks},
                        {"threads_per_process", r.threads},
                        {"batch", r.batch},
                        {"steps", r.steps},
                        {"warmup", o.warmup},
                        {"images_per_s", r.images_per_s()},
                        {"step_ms", 1e3 * r.step_s},
                        {"compute_ms", 1e3 * (r.step_s - r.wait_s - r.allreduce_s)},
                        {"wait_ms", 1e3 * r.wait_s},
                        {"allreduce_ms", 1e3 * r.allreduce_s},
                        {"allreduce_share", share},
                        {"gradient_mb", mb}};
    std::cout << j.dump(2) << "\n";
    return;
  }
  std::printf("training %s (%.2fM parameters, query-key %s): %d process%s x %d thread%s, global batch %d, %d steps "
              "after %d warm-up\n",
              name.c_str(), double(r.params) * 1e-6, forms_name(c.qk).c_str(), r.ranks, r.ranks == 1 ? "" : "es",
              r.threads, r.threads == 1 ? "" : "s", r.batch, r.steps, o.warmup);
  std::printf("%.2f images/s; %.1f ms per step: compute %.1f ms, waiting for the slowest process %.1f ms, "
              "all-reduce of %.1f MB %.1f ms (%.1f%% of the step)\n",
              r.images_per_s(), 1e3 * r.step_s, 1e3 * (r.step_s - r.wait_s - r.allreduce_s), 1e3 * r.wait_s, mb,
              1e3 * r.allreduce_s, 100 * share);
}

// ---- one attention layer in both query-key forms ------------------------------------------

// The parts of an attention layer whose cost depends on the form: input projection, the
// attention core and the output projection (layernorm and residual excluded), one image.
struct AttentionLayer {
  AttentionDims d;
  std::vector<float> x, w_in, b_in, w_out, b_out, P, att, heads, y;

  AttentionLayer(int D, int H, int n, Form qk, Rng& rng)
      : d{1, n, D, H, qk, Form::Factorized},
        x(size_t(n) * D),
        w_in(size_t(d.in_rows()) * D),
        b_in(d.in_rows()),
        w_out(size_t(D) * d.out_cols()),
        b_out(D),
        P(size_t(n) * d.in_rows()),
        att(size_t(H) * n * n),
        heads(size_t(n) * d.out_cols()),
        y(size_t(n) * D) {
    for (auto* v : {&x, &b_in, &b_out}) fill_normal(*v, rng, 1.0f);
    for (auto* v : {&w_in, &w_out}) fill_normal(*v, rng, 1.0f / std::sqrt(float(D)));
    // Scores of unit variance in both forms, as in a real model: q, k have unit entries and
    // are scaled by 1/sqrt(d_h); a merged p = x A_h^T + u_h meets x unscaled, so A_h needs
    // entries of std 1/D. (Scores D times too wide would make exp() underflow, a slow path
    // that has nothing to do with the form.)
    if (qk == Form::Merged)
      for (long i = 0; i < long(d.qk_rows()) * D; ++i) w_in[i] /= std::sqrt(float(D));
  }
  void run() {
    const int n = d.n, D = d.D;
    linear_forward(P.data(), x.data(), w_in.data(), b_in.data(), n, D, d.in_rows());
    attention_forward(d, P.data(), x.data(), att.data(), heads.data());
    linear_forward(y.data(), heads.data(), w_out.data(), b_out.data(), n, d.out_cols(), D);
  }
};

struct GridPoint {
  int D, H, n;
};

std::vector<GridPoint> grid(bool quick) {
  if (quick)
    return {{64, 1, 197},  {256, 1, 197}, {768, 1, 197}, {768, 1, 50},   {512, 2, 197},
            {192, 3, 197}, {384, 6, 197}, {768, 12, 197}, {1024, 16, 197}, {768, 12, 50}};
  std::vector<GridPoint> g;
  for (int n : {50, 197, 577})  // single-head layers: the only ones the cost model merges
    for (int D : {64, 128, 256, 384, 512, 768, 1024}) g.push_back({D, 1, n});
  for (int D : {128, 256, 512, 1024}) g.push_back({D, 2, 197});  // wide heads
  for (GridPoint p : {GridPoint{1024, 2, 50}, {1024, 2, 577}, {512, 2, 577}, {512, 4, 197}, {1024, 4, 197}})
    g.push_back(p);
  for (int n : {50, 197, 577})  // ViT-Ti/S/B (and L at 197): the standard shapes
    for (GridPoint p : {GridPoint{192, 3, n}, {384, 6, n}, {768, 12, n}}) g.push_back(p);
  g.push_back({1024, 16, 197});
  g.push_back({64, 4, 197});  // narrow heads (d_h = 16)
  return g;
}

// Median ms per run of two layers. Each measurement repeats a layer for about target_ms;
// the measurements of the two alternate, so a change of machine load hits both alike.
std::pair<double, double> time_pair(AttentionLayer& a, AttentionLayer& b, double target_ms, int measurements) {
  auto once = [](AttentionLayer& l, int reps) {
    const auto t0 = Clock::now();
    for (int r = 0; r < reps; ++r) l.run();
    return ms_since(t0) / reps;
  };
  once(a, 1), once(b, 1);  // warm caches and page in the buffers
  const int ra = std::max(1, int(std::ceil(target_ms / once(a, 1))));
  const int rb = std::max(1, int(std::ceil(target_ms / once(b, 1))));
  std::vector<double> ta, tb;
  for (int i = 0; i < measurements; ++i) ta.push_back(once(a, ra)), tb.push_back(once(b, rb));
  return {median(ta), median(tb)};
}

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
  nlohmann::json points = nlohmann::json::array();
  int decided = 0, right = 0;
  std::vector<std::string> wrong;
  Rng rng(3);
  for (const GridPoint& g : grid(quick)) {
    AttentionLayer fact(g.D, g.H, g.n, Form::Factorized, rng), merged(g.D, g.H, g.n, Form::Merged, rng);
    const auto [fms, mms] = time_pair(fact, merged, target_ms, measurements);
    auto macs = [&](Form f) { return qk_cost(g.D, g.H, g.n, f).macs + ov_cost(g.D, g.H, g.n, Form::Factorized).macs; };
    const double predicted = double(macs(Form::Merged)) / double(macs(Form::Factorized));
    const double measured = mms / fms;
    const std::string pred_fast = predicted < 1 ? "merged" : "factorized";
    const std::string meas_fast = measured < 1 ? "merged" : "factorized";
    const bool clear = std::max(measured, 1 / measured) > 1.10;  // the two times differ by > 10%
    const bool ok = pred_fast == meas_fast;
    if (clear) {
      ++decided, right += ok;
      if (!ok) wrong.push_back(cat("D=", g.D, " H=", g.H, " n=", g.n));
    }
    points.push_back({{"D", g.D},
                      {"H", g.H},
                      {"n", g.n},
                      {"factorized_ms", fms},
                      {"merged_ms", mms},
                      {"measured_ratio", measured},
                      {"predicted_ratio", predicted},
                      {"predicted_faster", pred_fast},
                      {"measured_faster", meas_fast},
                      {"differ_by_10pct", clear},
                      {"right", ok}});
    if (!json)
      std::printf("%5d %3d %4d %10.3f %10.3f %9.3f %9.3f %10s %10s  %s\n", g.D, g.H, g.n, fms, mms, measured, predicted,
                  pred_fast.c_str(), meas_fast.c_str(), ok ? (clear ? "yes" : "yes (within 10%)") : (clear ? "NO" : "no (within 10%)"));
  }
  const double accuracy = decided ? double(right) / decided : 1.0;
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
  static bool json = false, grid_mode = false, quick = false, train = false;
  o.model.add(app, false);
  app->add_option("-p,--preset", o.preset_name, "A named model with random weights: vit-ti16, vit-s16, vit-b16, vit-l16, fmnist");
  app->add_option("-b,--batch", o.batch, "Images per forward pass")->capture_default_str()->check(CLI::Range(1, 4096));
  app->add_option("--runs", o.runs, "Timed runs (the median is reported)")->capture_default_str()->check(CLI::Range(1, 100000));
  app->add_option("--warmup", o.warmup, "Untimed runs first")->capture_default_str()->check(CLI::Range(0, 100000));
  threads.add(app);
  app->add_flag("--attention-grid", grid_mode,
                "Instead of a model: one attention layer, factorized vs merged query-key, over a grid of D, H, n");
  app->add_flag("--train", train,
                "Instead of inference: training steps (under mpirun data-parallel; --batch is the global batch, "
                "--runs the timed steps)");
  app->add_flag("--quick", quick, "With --attention-grid: fewer points and repetitions (~15 s)");
  app->add_flag("--json", json, "Print JSON");
  app->callback([] {
    threads.apply();
    if (grid_mode) {
      if (train) fail("bench: --train and --attention-grid are separate modes");
      if (!o.model.path.empty() || !o.preset_name.empty()) fail("bench: --attention-grid takes no --model or --preset");
      run_attention_grid(quick, json);
    } else {
      if (quick) fail("bench: --quick goes with --attention-grid");
      if (train) run_train_bench(o, json);
      else run_model_bench(o, json);
    }
  });
}

}  // namespace vitqk::cli
