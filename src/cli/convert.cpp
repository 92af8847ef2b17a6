// vitqk merge / unmerge: exact conversion between the attention forms, verified by running
// both models before anything is written.
#include <cstdio>
#include <iostream>

#include "cli/common.h"
#include "core/error.h"
#include "model/convert.h"

namespace vitqk::cli {

namespace {

// Runs both models on one random batch; refuses (throws) when the difference is beyond
// tol * max(1, max |logit|) and `strict`.
LogitDiff verify(const ViT& before, const ViT& after, double tol, bool strict, const std::string& out) {
  const LogitDiff d = compare_on_random_batch(before, after);
  std::printf("largest logit difference on a random batch: %.3g (largest |logit| %.3g, relative %.3g)\n",
              d.max_abs_diff, d.max_abs_logit, d.relative());
  if (strict && !(d.relative() <= tol))
    fail(out, ": not written: the converted model differs by ", d.relative(), " (relative), beyond --tolerance ", tol);
  return d;
}

void save_and_check(const std::string& out, const ViT& converted) {
  io::save_model(out, converted);
  // Read back what was written: the file, not only the memory, must give the same logits.
  const io::LoadedModel back = io::load_model(out);
  if (compare_on_random_batch(converted, back.model).max_abs_diff != 0.0)
    fail(out, ": written file does not reproduce the converted model");
  std::printf("wrote %s\n", out.c_str());
}

std::string forms_summary(const ViTConfig& c) {
  int mqk = 0, mov = 0;
  for (int l = 0; l < c.depth; ++l) mqk += c.qk[l] == Form::Merged, mov += c.ov[l] == Form::Merged;
  return std::to_string(mqk) + "/" + std::to_string(c.depth) + " layers merged query-key, " + std::to_string(mov) +
         "/" + std::to_string(c.depth) + " merged value-output";
}

}  // namespace

void add_merge(CLI::App& root) {
  auto* app = root.add_subcommand("merge", "Convert a model to merged attention (exact; biases folded)");
  static ModelFlags model;
  static ThreadFlag threads;
  static std::string out, layers = "all", pairs = "qk";
  static double tol = 1e-4;
  app->add_option("input", model.path, "Model checkpoint (any naming)")->required()->check(CLI::ExistingFile);
  app->add_option("output", out, "Where to write the merged model (.safetensors)")->required();
  app->add_option("--heads", model.opts.heads, "Number of attention heads (when the file does not record it; otherwise must agree)")
      ->check(CLI::Range(1, 256));
  app->add_option("--eps", model.opts.eps, "LayerNorm epsilon (default: the file's, else the ecosystem's)")->check(kPositive);
  app->add_option("--layers", layers, "Layers to merge: all, auto (where the cost model says it is cheaper), none, or a list like 0,2,5-7")
      ->capture_default_str();
  app->add_option("--pairs", pairs, "Which pairs to merge: qk, ov or qk,ov")
      ->check(CLI::IsMember({"qk", "ov", "qk,ov", "ov,qk"}))
      ->capture_default_str();
  app->add_option("--tolerance", tol, "Refuse to write if max |logit difference| > tolerance * max(1, max |logit|)")
      ->check(kPositive)
      ->capture_default_str();
  threads.add(app);
  app->callback([] {
    threads.apply();
    const ViT m = model.load().model;
    const ViTConfig& c = m.cfg;
    std::vector<Form> qk = c.qk, ov = c.ov;
    const bool do_qk = pairs.find("qk") != std::string::npos, do_ov = pairs.find("ov") != std::string::npos;
    if (layers == "auto") {
      if (do_qk) qk = choose_forms(c, "auto", true);
      if (do_ov) ov = choose_forms(c, "auto", false);
    } else {
      const std::vector<bool> sel = parse_layers(layers, c.depth);
      for (int l = 0; l < c.depth; ++l)
        if (sel[l]) {
          if (do_qk) qk[l] = Form::Merged;
          if (do_ov) ov[l] = Form::Merged;
        }
    }
    const ViT merged = convert(m, qk, ov);
    std::printf("%s: %s\n", model.path.c_str(), forms_summary(merged.cfg).c_str());
    verify(m, merged, tol, true, out);
    save_and_check(out, merged);
  });
}

void add_unmerge(CLI::App& root) {
  auto* app = root.add_subcommand("unmerge", "Convert merged attention back to factorized heads (SVD)");
  static ModelFlags model;
  static ThreadFlag threads;
  static std::string out;
  static UnmergeOptions opts;
  static double tol = 1e-4;
  app->add_option("input", model.path, "Model checkpoint with merged layers")->required()->check(CLI::ExistingFile);
  app->add_option("output", out, "Where to write the factorized model (.safetensors)")->required();
  auto* rank = app->add_option("--rank", opts.rank, "Singular values kept per head (default and maximum: the head width)")
                   ->check(CLI::Range(1, 1 << 16));
  app->add_option("--tol", opts.tol, "Keep the smallest rank whose relative error is at most this")
      ->check(CLI::Range(0.0, 1.0))
      ->excludes(rank);
  app->add_option("--tolerance", tol, "Refuse to write an exact unmerge whose logits differ beyond this (relative)")
      ->check(kPositive)
      ->capture_default_str();
  threads.add(app);
  app->callback([] {
    threads.apply();
    model.opts.factorized_is_an_error = true;
    const ViT m = model.load().model;
    const ViTConfig& c = m.cfg;
    if (!c.any_merged()) fail(model.path, ": no merged layers to unmerge (the model is factorized already)");
    if (opts.rank > c.head_dim())
      fail("--rank ", opts.rank, ": a factorized head holds at most rank ", c.head_dim(), " (the head width)");
    std::vector<HeadReport> report;
    const ViT f = convert(m, std::vector<Form>(c.depth, Form::Factorized), std::vector<Form>(c.depth, Form::Factorized),
                          opts, &report);
    bool exact = true;
    std::printf("%-6s %-5s %-5s %5s %15s %12s\n", "layer", "pair", "head", "kept", "numerical rank", "rel. error");
    for (const auto& h : report) {
      std::printf("%-6d %-5s %-5d %5d %15d %12.3g\n", h.layer, h.pair.c_str(), h.head, h.rank, h.numerical_rank,
                  h.rel_error);
      exact = exact && h.exact();
    }
    std::printf("%s\n", exact ? "every head kept its full rank: the conversion is exact"
                              : "some heads were truncated: the unmerged model approximates the merged one");
    verify(m, f, tol, exact, out);
    save_and_check(out, f);
  });
}

void add_convert(CLI::App& root) {
  auto* app = root.add_subcommand("convert", "Rewrite a checkpoint in vitqk's format with fp32 or bf16 weights");
  static ModelFlags model;
  static ThreadFlag threads;
  static std::string out, dtype = "bf16";
  app->add_option("input", model.path, "Model checkpoint (any naming)")->required()->check(CLI::ExistingFile);
  app->add_option("output", out, "Where to write it (.safetensors, timm naming, config in the metadata)")->required();
  app->add_option("--dtype", dtype, "Storage type of the weights: bf16 (half the size) or fp32")
      ->check(CLI::IsMember({"fp32", "bf16"}))
      ->capture_default_str();
  app->add_option("--heads", model.opts.heads, "Number of attention heads (when the file does not record it; otherwise must agree)")
      ->check(CLI::Range(1, 256));
  app->add_option("--eps", model.opts.eps, "LayerNorm epsilon (default: the file's, else the ecosystem's)")->check(kPositive);
  threads.add(app);
  app->callback([] {
    threads.apply();
    const ViT m = model.load().model;
    io::save_model(out, m, {}, dtype == "bf16" ? io::DType::BF16 : io::DType::F32);
    // What rounding the weights cost, measured on the file as written.
    const LogitDiff d = compare_on_random_batch(m, io::load_model(out).model);
    std::printf("wrote %s (%s weights); largest logit difference from the original on a random batch: %.3g "
                "(largest |logit| %.3g)\n",
                out.c_str(), dtype.c_str(), d.max_abs_diff, d.max_abs_logit);
  });
}

}  // namespace vitqk::cli
