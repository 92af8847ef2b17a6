// vitqk bench: the speed of a whole model (vit_forward) as a fraction of this machine's
// measured FMA peak, beside PyTorch and ONNX Runtime on the same weights with --peers; with
// --train, of training steps (data-parallel under mpirun); or, with --attention-grid, one
// attention layer in both query-key forms over a grid of shapes, checked against the cost
// model's prediction.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "core/error.h"
#include "core/peak.h"
#include "core/threads.h"
#include "dist/comm.h"
#include "core/rng.h"
#include "io/model_file.h"
#include "io/safetensors.h"
#include "measure/attention_grid.h"
#include "measure/peers.h"
#include "measure/timing.h"
#include "model/convert.h"
#include "model/cost.h"
#include "train/init.h"
#include "train/trainer.h"

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
  DtypeFlag dtype;
  int batch = 1, runs = 10, warmup = 2;
  bool peers = false;
  std::string peers_dir = VITQK_SOURCE_DIR "/tools/peers";
};

ViTConfig preset_config(const ModelBench& o) {
  ViTConfig c = preset_with(o.preset_name, o.model.opts);
  c.qk = choose_forms(c, o.model.attention, true);
  c.ov = choose_forms(c, o.model.ov, false);
  return c;
}

// The model to time, packed. A preset gets random weights (timm's init, seed 1; merged pairs
// are exact products) one parameter at a time and a file streams in, so the plain weights
// are never in memory beside the packed ones unless a form must be converted. With
// `peer_model`, the standard-attention weights are also written there for the peers.
PackedViT bench_model(const ModelBench& o, Precision p, const std::string& peer_model) {
  if (o.model.path.empty() == o.preset_name.empty()) fail("bench: give exactly one of --model and --preset");
  if (!peer_model.empty()) {
    ViT f = [&] {
      if (!o.model.path.empty()) return io::load_model(o.model.path, o.model.opts).model;
      ViT m(with_forms(preset_config(o), Form::Factorized, Form::Factorized));
      init_params(m, 1);
      return m;
    }();
    if (f.cfg.any_merged())
      fail("bench --peers: ", o.model.path, " has merged attention, and the peers run standard ViTs: give the "
           "factorized model (--attention merged times vitqk's merged form of it)");
    if (f.cfg.num_classes == 0) fail("bench --peers: ", o.model.path, ": the peers need a model with a classifier head");
    io::save_model(peer_model, f);
    const auto qk = choose_forms(f.cfg, o.model.attention, true), ov = choose_forms(f.cfg, o.model.ov, false);
    if (qk == f.cfg.qk && ov == f.cfg.ov) return PackedViT(f, p);
    return PackedViT(convert(f, qk, ov), p);
  }
  if (!o.model.path.empty()) return o.model.load_packed(p);
  const ViTConfig c = preset_config(o);
  if (c.any_merged()) {
    ViT m(c);
    init_params(m, 1);
    return PackedViT(m, p);
  }
  Rng rng(1);
  return PackedViT(c, p, [&](const ParamInfo& q, float* dst) { init_param(q, dst, rng); });
}

struct EngineFigures {
  std::string engine, version, setup, error;
  double ms = 0, images_per_s = 0, gflops = 0, peak_fraction = 0, speedup = 0, logit_diff = 0;
  bool agree = true;
};

void run_model_bench(const ModelBench& o, bool json) {
  const Precision precision = o.dtype.precision();
  std::optional<ScratchDir> dir;
  if (o.peers) dir.emplace();
  const PackedViT m = bench_model(o, precision, dir ? dir->path() + "/model.safetensors" : "");
  const ViTConfig& c = m.cfg;
  const CpuInfo cpu = cpu_info();
  const Peak peak = measure_peak(max_threads());

  const int64_t in = int64_t(c.in_chans) * c.image_size * c.image_size;
  std::vector<float> pixels(size_t(o.batch) * in);
  Rng rng(2);
  for (float& x : pixels) x = rng.normal();
  std::vector<double> times = time_forward(m, o.batch, o.runs, o.warmup, pixels.data());

  // Peers: the same weights (standard attention) and input; vitqk is timed again after them,
  // so a change of machine load during the run weighs on every engine.
  std::vector<PeerResult> peers;
  std::vector<float> logits;
  if (dir) {
    io::write_safetensors(dir->path() + "/input.safetensors",
                          {{"pixel_values", {o.batch, c.in_chans, c.image_size, c.image_size}, pixels.data()}}, {});
    Activations a;
    vit_forward(m, pixels.data(), o.batch, a);
    logits.assign(a.logits, a.logits + size_t(o.batch) * c.out_dim());
    const PeerJob job{o.peers_dir, dir->path(), max_threads(), o.runs, o.warmup};
    if (!json) std::fprintf(stderr, "running the peers (PyTorch twice, ONNX Runtime)...\n");
    peers.push_back(run_pytorch(job));
    peers.push_back(run_onnxruntime(job));
    const std::vector<double> again = time_forward(m, o.batch, o.runs, 1, pixels.data());
    times.insert(times.end(), again.begin(), again.end());
  }

  const double ms = median(times);
  // GFLOP/s count the work each engine does: the peers run the factorized model and compute
  // every token through the last block, vitqk only the class token there.
  const int64_t macs = forward_cost(c).total().macs, model_macs = model_cost(c).total().macs;
  const int64_t peer_macs = model_cost(with_forms(c, Form::Factorized, Form::Factorized)).total().macs;
  auto figures = [&](double t, int64_t work) {
    EngineFigures f;
    f.ms = t, f.images_per_s = o.batch / (t * 1e-3), f.gflops = 2.0 * double(work) * o.batch / (t * 1e-3) * 1e-9;
    f.peak_fraction = f.gflops / peak.gflops;
    return f;
  };
  const EngineFigures self = figures(ms, macs);
  const double rss = peak_rss_mib();
  const std::string name = o.preset_name.empty() ? o.model.path : o.preset_name;
  const std::string dtype_name = precision == Precision::BF16 ? "bf16" : "fp32";

  // A peer's logits agree when within float32 rounding of the same function (bf16 rounds
  // weights and GEMM inputs to 8 bits: a looser bound, reported all the same).
  double max_logit = 0;
  for (float v : logits) max_logit = std::max(max_logit, double(std::fabs(v)));
  const double tol = (precision == Precision::BF16 ? 5e-2 : 1e-3) * std::max(1.0, max_logit);
  std::vector<EngineFigures> others;
  for (const PeerResult& p : peers) {
    EngineFigures f = p.ok() ? figures(p.median_ms, peer_macs) : EngineFigures{};
    f.engine = p.engine, f.version = p.version, f.setup = p.setup, f.error = p.error;
    if (p.ok()) {
      f.speedup = self.images_per_s / f.images_per_s;
      if (p.logits.size() != logits.size()) f.error = "logits of another shape";
      for (size_t i = 0; i < p.logits.size() && i < logits.size(); ++i)
        f.logit_diff = std::max(f.logit_diff, double(std::fabs(p.logits[i] - logits[i])));
      f.agree = f.error.empty() && f.logit_diff <= tol;
    }
    others.push_back(f);
  }

  if (json) {
    nlohmann::json j = {{"model", name},
                        {"qk", forms_name(c.qk)},
                        {"ov", forms_name(c.ov)},
                        {"dtype", dtype_name},
                        {"batch", o.batch},
                        {"runs", int(times.size())},
                        {"warmup", o.warmup},
                        {"macs_per_image", macs},
                        {"model_macs_per_image", model_macs},
                        {"median_ms", ms},
                        {"min_ms", *std::min_element(times.begin(), times.end())},
                        {"images_per_s", self.images_per_s},
                        {"gflops", self.gflops},
                        {"peak_gflops", peak.gflops},
                        {"peak_fraction", self.peak_fraction},
                        {"peak_rss_mib", rss},
                        {"weights_mib", double(m.bytes()) / (1 << 20)},
                        {"threads", peak.threads},
                        {"machine", machine_json(cpu, peak)}};
    if (dir) {
      j["max_abs_logit"] = max_logit;
      j["peers"] = nlohmann::json::array();
      for (const EngineFigures& f : others) {
        if (!f.error.empty()) {
          j["peers"].push_back({{"engine", f.engine}, {"error", f.error}});
          continue;
        }
        j["peers"].push_back({{"engine", f.engine},
                              {"version", f.version},
                              {"setup", f.setup},
                              {"median_ms", f.ms},
                              {"images_per_s", f.images_per_s},
                              {"gflops", f.gflops},
                              {"peak_fraction", f.peak_fraction},
                              {"vitqk_speedup", f.speedup},
                              {"max_logit_diff", f.logit_diff},
                              {"logits_agree", f.agree}});
      }
    }
    std::cout << j.dump(2) << "\n";
  } else {
    print_machine(cpu, peak);
    std::printf(
        "%s: query-key %s, value-output %s, %s, batch %d; %.2f GMACs per image (of the model's %.2f: the last "
        "block computes the class token only)\n",
        name.c_str(), forms_name(c.qk).c_str(), forms_name(c.ov).c_str(), dtype_name.c_str(), o.batch,
        double(macs) * 1e-9, double(model_macs) * 1e-9);
    std::printf("median %.2f ms per batch over %zu runs (after %d warm-up): %.1f images/s\n", ms, times.size(),
                o.warmup, self.images_per_s);
    std::printf("%.1f GFLOP/s = %.0f%% of the measured peak; weights %.0f MiB, peak RSS %.0f MiB%s\n", self.gflops,
                100 * self.peak_fraction, double(m.bytes()) / (1 << 20), rss,
                dir ? " (with the copy written for the peers)" : "");
    if (dir) {
      std::printf("\n%-14s %10s %9s %8s %7s %14s %12s  %s\n", "engine", "ms/batch", "images/s", "GFLOP/s", "% peak",
                  "vitqk speed-up", "max |dlogit|", "set-up");
      std::printf("%-14s %10.2f %9.1f %8.1f %6.0f%% %14s %12s  %s\n", "vitqk", self.ms, self.images_per_s, self.gflops,
                  100 * self.peak_fraction, "", "", (dtype_name + ", packed weights").c_str());
      for (const EngineFigures& f : others) {
        if (!f.error.empty()) {
          std::printf("%-14s not run: %s\n", f.engine.c_str(), f.error.c_str());
          continue;
        }
        std::printf("%-14s %10.2f %9.1f %8.1f %6.0f%% %13.2fx %12.2g  %s %s\n", f.engine.c_str(), f.ms, f.images_per_s,
                    f.gflops, 100 * f.peak_fraction, f.speedup, f.logit_diff, f.version.c_str(), f.setup.c_str());
      }
      std::printf("logits (largest |logit| %.3g): ", max_logit);
      bool all = true;
      for (const EngineFigures& f : others) all &= f.agree;
      std::printf(all ? "every engine agrees with vitqk within %.2g\n" : "DISAGREE beyond %.2g\n", tol);
    }
  }
  for (const EngineFigures& f : others)
    if (!f.agree) fail("bench --peers: ", f.engine, "'s logits differ from vitqk's by ", f.logit_diff, " (> ", tol, ")");
}

// ---- training steps, data-parallel under mpirun -------------------------------------------

void run_train_bench(const ModelBench& o, bool json) {
  if (o.model.path.empty() == o.preset_name.empty()) fail("bench: give exactly one of --model and --preset");
  const ViTConfig c = o.model.path.empty() ? preset_config(o) : o.model.load().model.cfg;
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
  static bool json = false, grid_mode = false, quick = false, train = false;
  o.model.add(app, false);
  o.dtype.add(app);
  app->add_flag("--peers", o.peers,
                "Also time PyTorch and ONNX Runtime on the same weights and input (tools/peers; see the README), "
                "check their logits agree, and print every engine's figures and vitqk's speed-up");
  app->add_option("--peers-dir", o.peers_dir, "Where the peer scripts are")->capture_default_str();
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
  app->callback([app] {
    threads.apply();
    // A flag a mode does not read is refused rather than ignored: a timing must mean what its
    // command line says.
    auto refuse = [&](const char* mode, std::initializer_list<const char*> flags) {
      for (const char* f : flags)
        if (app->count(f)) fail("bench ", mode, ": ", f, " does not apply (see vitqk bench --help)");
    };
    if (grid_mode) {
      if (train) fail("bench: --train and --attention-grid are separate modes");
      if (!o.model.path.empty() || !o.preset_name.empty()) fail("bench: --attention-grid takes no --model or --preset");
      refuse("--attention-grid", {"--attention", "--ov", "--heads", "--eps", "--dtype", "--batch", "--runs", "--warmup",
                                  "--peers", "--peers-dir"});
      run_attention_grid(quick, json);
    } else {
      if (quick) fail("bench: --quick goes with --attention-grid");
      if (train && o.peers) fail("bench: --peers times inference; for training peers run tools/peers/train_bench.py");
      if (train && o.dtype.name != "fp32") fail("bench --train: training runs in fp32; --dtype is for inference");
      if (train)
        run_train_bench(o, json);
      else
        run_model_bench(o, json);
    }
  });
}

}  // namespace vitqk::cli
