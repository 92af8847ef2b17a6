#include "cli/common.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iostream>

#include "core/error.h"
#include "core/peak.h"
#include "core/threads.h"
#include "io/safetensors.h"
#include "model/convert.h"

namespace vitqk::cli {

namespace {

CLI::Validator number_check(const char* name, bool (*ok)(double), const char* must) {
  return CLI::Validator(
      [ok, must](std::string& s) -> std::string {
        double v = 0;
        size_t used = 0;
        try {
          v = std::stod(s, &used);
        } catch (const std::exception&) {
          return "'" + s + "' is not a number";
        }
        if (used != s.size()) return "'" + s + "' is not a number";
        return ok(v) ? std::string() : "'" + s + "': must be " + must;
      },
      name);
}

}  // namespace

const CLI::Validator kPositive =
    number_check("POSITIVE", [](double v) { return std::isfinite(v) && v > 0; }, "a positive number");
const CLI::Validator kNonNegative =
    number_check("NONNEGATIVE", [](double v) { return std::isfinite(v) && v >= 0; }, "zero or a positive number");

void refuse_non_finite(CLI::App& app) {
  const CLI::Validator finite = number_check("", [](double v) { return std::isfinite(v); }, "a finite number");
  for (CLI::App* sub : app.get_subcommands({}))
    for (CLI::Option* o : sub->get_options())
      if (o->get_type_name().rfind("FLOAT", 0) == 0) o->check(finite);  // "FLOAT" + any check's text
}

std::string parse_error_line(const CLI::App& app, const CLI::ParseError& e, int argc, char** argv) {
  std::string what = e.what();
  std::replace(what.begin(), what.end(), '\n', ' ');
  // An unknown verb reaches CLI11 as a stray argument: name it and the verbs there are.
  std::string verbs;
  bool known = false;
  for (const CLI::App* s : app.get_subcommands({})) {
    verbs += (verbs.empty() ? "" : ", ") + s->get_name();
    known |= argc > 1 && s->get_name() == argv[1];
  }
  if (argc > 1 && argv[1][0] != '-' && !known)
    return std::string("unknown command '") + argv[1] + "' (commands: " + verbs + ")";
  std::string where = "vitqk --help";
  for (const CLI::App* s : app.get_subcommands())
    if (s->parsed()) where = "vitqk " + s->get_name() + " --help";
  return what + " (see " + where + ")";
}

void ModelFlags::add(CLI::App* app, bool required) {
  auto* m = app->add_option("-m,--model", path, "Model checkpoint (.safetensors; timm, Hugging Face or torchvision naming)")
                ->check(CLI::ExistingFile);
  if (required) m->required();
  app->add_option("--heads", opts.heads, "Number of attention heads (when the file does not record it; otherwise must agree)")
      ->check(CLI::Range(1, 256));
  app->add_option("--eps", opts.eps, "LayerNorm epsilon (default: the file's, else the ecosystem's)")
      ->check(kPositive);
  const auto forms = CLI::IsMember({"factorized", "merged", "auto"});
  app->add_option("--attention", attention, "Query-key form to run: factorized, merged or auto (default: as stored)")
      ->check(forms);
  app->add_option("--ov", ov, "Value-output form to run: factorized, merged or auto (default: as stored)")
      ->check(forms);
}

io::LoadedModel ModelFlags::load() const {
  io::LoadedModel m = io::load_model(path, opts);
  for (const auto& n : m.notes) std::cerr << "vitqk: note: " << path << ": " << n << "\n";
  const auto qk = choose_forms(m.model.cfg, attention, true), o = choose_forms(m.model.cfg, ov, false);
  if (qk != m.model.cfg.qk || o != m.model.cfg.ov) {
    std::vector<HeadReport> report;
    m.model = convert(m.model, qk, o, {}, &report);
    // Merging is exact; unmerging is exact only where a merged matrix has rank <= d_h (a model
    // merged from a factorized one), not for one trained merged: say what was lost.
    int cut = 0;
    double worst = 0;
    for (const HeadReport& h : report) cut += !h.exact(), worst = std::max(worst, h.rel_error);
    if (cut)
      std::cerr << "vitqk: note: " << path << ": converting to factorized on load truncated " << cut << " of "
                << report.size() << " heads to rank " << m.model.cfg.head_dim() << " (largest relative error " << worst
                << "; `vitqk unmerge` lists them): the factorized model approximates the stored one\n";
  }
  return m;
}

PackedViT ModelFlags::load_packed(Precision precision) const {
  const ViTConfig stored = io::infer_model(io::SafeTensorsReader(path), opts).config;  // the header only
  if (choose_forms(stored, attention, true) != stored.qk || choose_forms(stored, ov, false) != stored.ov)
    return PackedViT(load().model, precision);  // load() converts
  io::LoadedPacked m = io::load_packed(path, precision, opts);
  for (const auto& n : m.notes) std::cerr << "vitqk: note: " << path << ": " << n << "\n";
  return std::move(m.model);
}

ViTConfig preset_with(const std::string& name, const io::LoadOptions& opts) {
  ViTConfig c = preset(name);
  if (opts.heads) c.heads = opts.heads;
  if (opts.eps > 0) c.eps = opts.eps;
  c.validate("--preset " + name);
  return c;
}

void DtypeFlag::add(CLI::App* app) {
  app->add_option("--dtype", name, "Inference precision: fp32, or bf16 (bf16 weights and GEMM inputs, fp32 accumulation; needs AVX512-BF16)")
      ->check(CLI::IsMember({"fp32", "bf16"}))
      ->capture_default_str();
}

Precision DtypeFlag::precision() const {
  if (name != "bf16") return Precision::F32;
  if (!cpu_info().avx512_bf16)
    fail("--dtype bf16: this CPU (", cpu_info().model, ") has no AVX512-BF16 instructions; use --dtype fp32");
  return Precision::BF16;
}

void ThreadFlag::add(CLI::App* app) {
  app->add_option("-t,--threads", threads, "Threads (default: all cores)")->check(CLI::Range(1, 1024));
}

void ThreadFlag::apply() const { set_threads(threads); }

void run_batched(const PackedViT& m, const float* pixels, long count, float* out, int chunk) {
  const long in = long(m.cfg.in_chans) * m.cfg.image_size * m.cfg.image_size;
  const int od = m.cfg.out_dim();
  Activations a;
  for (long i = 0; i < count; i += chunk) {
    const int b = int(std::min<long>(chunk, count - i));
    vit_forward(m, pixels + i * in, b, a);
    std::memcpy(out + i * od, a.logits, sizeof(float) * b * od);
  }
}

}  // namespace vitqk::cli
