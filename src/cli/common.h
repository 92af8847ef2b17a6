#pragma once
// Flags and helpers shared by the verbs. Every verb file defines one `add_<verb>(CLI::App&)`
// that registers its subcommand, flags and callback.
#include <CLI/CLI.hpp>
#include <string>

#include "io/model_file.h"

namespace vitqk::cli {

// --model, --heads, --eps: how to read a checkpoint of any naming; --attention and --ov:
// which form to run each pair in (converted on load; default: as stored).
struct ModelFlags {
  std::string path;
  io::LoadOptions opts;
  std::string attention, ov;
  void add(CLI::App* app, bool required = true);
  io::LoadedModel load() const;  // prints the loader's notes to stderr
  // For inference: packed once; streamed from the file unless a form must be converted.
  PackedViT load_packed(Precision precision) const;
};

// A named model with --heads and --eps applied: a preset is a starting point, where a file's
// recorded head count may not be contradicted.
ViTConfig preset_with(const std::string& name, const io::LoadOptions& opts);

// --dtype fp32|bf16: the precision of inference weights and GEMM inputs.
struct DtypeFlag {
  std::string name = "fp32";
  void add(CLI::App* app);
  // Refuses bf16 on a CPU without AVX512-BF16, with a message that says so.
  Precision precision() const;
};

// --threads (0: all cores / OMP_NUM_THREADS).
struct ThreadFlag {
  int threads = 0;
  void add(CLI::App* app);
  void apply() const;
};

// Number checks with one-line messages. CLI11's own accept "nan" and "inf" and print their
// upper bound as a 309-digit number.
extern const CLI::Validator kPositive, kNonNegative;
// Adds a finiteness check to every floating-point option of `app`'s subcommands, so that no
// flag takes NaN or infinity (a --lr nan trained a model of NaNs and exited 0).
void refuse_non_finite(CLI::App& app);
// A command-line error as one line: what CLI11 said, and where to look.
std::string parse_error_line(const CLI::App& app, const CLI::ParseError& e, int argc, char** argv);

// Runs the model over `count` inputs of `image_floats` each, `chunk` at a time, writing
// out_dim values per input into `out`.
void run_batched(const PackedViT& m, const float* pixels, long count, float* out, int chunk = 32);

void add_forward(CLI::App& root);
void add_classify(CLI::App& root);
void add_info(CLI::App& root);
void add_merge(CLI::App& root);
void add_unmerge(CLI::App& root);
void add_convert(CLI::App& root);
void add_train(CLI::App& root);
void add_eval(CLI::App& root);
void add_bench(CLI::App& root);
void add_study(CLI::App& root);

}  // namespace vitqk::cli
