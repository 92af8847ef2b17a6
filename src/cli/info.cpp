// vitqk info: parameters, MACs and activation memory per layer in every attention form.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "model/cost.h"

namespace vitqk::cli {

namespace {

std::string human(double v) {
  const char* units[] = {"", "K", "M", "G", "T"};
  int u = 0;
  while (v >= 1000 && u < 4) v /= 1000, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.2f%s" : "%.0f%s", v, units[u]);
  return buf;
}

nlohmann::json cost_json(const Cost& c) { return {{"params", c.params}, {"macs", c.macs}, {"act_bytes", c.act_bytes}}; }

nlohmann::json variant_json(const ViTConfig& c, int tokens) {
  const ModelCost m = model_cost(c, tokens);
  nlohmann::json j = cost_json(m.total());
  j["embed"] = cost_json(m.embed);
  j["head"] = cost_json(m.head);
  j["layers"] = nlohmann::json::array();
  for (int l = 0; l < c.depth; ++l) {
    nlohmann::json lj = cost_json(m.layers[l].total());
    lj["qk"] = cost_json(m.layers[l].qk);
    lj["ov"] = cost_json(m.layers[l].ov);
    lj["qk_form"] = form_name(c.qk[l]);
    lj["ov_form"] = form_name(c.ov[l]);
    j["layers"].push_back(lj);
  }
  return j;
}

ViTConfig config_of(const std::string& model_path, const io::LoadOptions& opts) {
  // The header is enough: no weight is read.
  const io::Inferred inf = io::infer_model(io::SafeTensorsReader(model_path), opts);
  for (const auto& n : inf.notes) std::cerr << "vitqk: note: " << model_path << ": " << n << "\n";
  return inf.config;
}

}  // namespace

void add_info(CLI::App& root) {
  auto* app = root.add_subcommand("info", "Parameters, MACs and memory per layer, factorized vs merged attention");
  static ModelFlags model;
  static std::string preset_name;
  static int tokens = 0, image_size = 0;
  static bool json = false;
  app->add_option("model", model.path, "Model checkpoint (.safetensors)")->check(CLI::ExistingFile);
  app->add_option("--heads", model.opts.heads, "Number of attention heads (when the file does not record it; otherwise must agree)")
      ->check(CLI::Range(1, 256));
  app->add_option("-p,--preset", preset_name, "A named model instead of a file: vit-ti16, vit-s16, vit-b16, vit-l16, fmnist");
  app->add_option("--tokens", tokens, "Sequence length n to cost (default: the model's)")->check(CLI::Range(2, 1 << 20));
  app->add_option("--image-size", image_size, "Image side to cost (sets n = 1 + (side/patch)^2)")
      ->check(CLI::Range(1, 1 << 16));
  app->add_flag("--json", json, "Print JSON");
  app->callback([] {
    if (model.path.empty() == preset_name.empty()) fail("info: give either a model file or --preset");
    ViTConfig c = preset_name.empty() ? config_of(model.path, model.opts) : preset_with(preset_name, model.opts);
    if (tokens && image_size) fail("info: give --tokens or --image-size, not both (the image size sets the tokens)");
    if (image_size) {
      if (image_size % c.patch_size) fail("--image-size ", image_size, " is not a multiple of the patch size ", c.patch_size);
      c.image_size = image_size;
    }
    const int n = tokens ? tokens : c.tokens();
    const ViTConfig fact = with_forms(c, Form::Factorized, Form::Factorized);
    const ViTConfig merged = with_forms(c, Form::Merged, Form::Factorized);
    const ViTConfig both = with_forms(c, Form::Merged, Form::Merged);
    const ViTConfig autoc = auto_forms(c, n);

    if (json) {
      nlohmann::json j;
      j["config"] = config_to_json(c);
      j["tokens"] = n;
      j["factorized"] = variant_json(fact, n);
      j["merged"] = variant_json(merged, n);
      j["merged_qk_ov"] = variant_json(both, n);
      j["auto"] = variant_json(autoc, n);
      j["as_stored"] = variant_json(c, n);
      std::cout << j.dump(2) << "\n";
      return;
    }
    const std::string name = preset_name.empty() ? model.path : preset_name;
    std::printf("%s: %dx%d images, patch %d, %d tokens, width %d, depth %d, %d heads of width %d, MLP %d, %d classes\n",
                name.c_str(), c.image_size, c.image_size, c.patch_size, n, c.dim, c.depth, c.heads, c.head_dim(),
                c.mlp_dim, c.num_classes);
    std::printf("Costs for one image. merged = query-key merged (A_h = Wq_h^T Wk_h / sqrt(d_h));\n"
                "merged qk+ov also merges W_O^h W_V^h. MACs count matrix products.\n\n");
    const ViTConfig* variants[] = {&fact, &merged, &both, &autoc};
    ModelCost costs[4];
    for (int v = 0; v < 4; ++v) costs[v] = model_cost(*variants[v], n);
    std::printf("%-6s %21s %21s %21s %21s\n", "", "factorized", "merged (qk)", "merged (qk+ov)", "auto");
    std::printf("%-6s", "layer");
    for (int v = 0; v < 4; ++v) std::printf(" %10s %10s", "params", "MACs");
    std::printf("  auto qk/ov\n");
    auto row = [&](const std::string& label, auto get, const std::string& tail) {
      std::printf("%-6s", label.c_str());
      for (int v = 0; v < 4; ++v) {
        const Cost x = get(costs[v]);
        std::printf(" %10s %10s", human(double(x.params)).c_str(), human(double(x.macs)).c_str());
      }
      std::printf("  %s\n", tail.c_str());
    };
    row("embed", [](const ModelCost& m) { return m.embed; }, "");
    for (int l = 0; l < c.depth; ++l)
      row(std::to_string(l), [l](const ModelCost& m) { return m.layers[l].total(); },
          form_name(autoc.qk[l]) + "/" + form_name(autoc.ov[l]));
    row("head", [](const ModelCost& m) { return m.head; }, "");
    row("total", [](const ModelCost& m) { return m.total(); }, "");
    std::printf("%-6s", "act");
    for (int v = 0; v < 4; ++v) std::printf(" %21s", (human(double(costs[v].total().act_bytes)) + "B").c_str());
    std::printf("  (activations kept for training, per image)\n\n");

    Cost fqk, mqk;
    for (int l = 0; l < c.depth; ++l) fqk += costs[0].layers[l].qk, mqk += costs[1].layers[l].qk;
    std::printf("Query-key path, merged vs factorized: %.2fx the parameters, %.2fx the MACs.\n",
                double(mqk.params) / double(fqk.params), double(mqk.macs) / double(fqk.macs));
    const long lhs = long(c.heads) * (c.dim + n), rhs = 2L * c.dim + n;
    std::printf("Merging a pair pays iff H (D + n) < 2D + n: %d x (%d + %d) = %ld %s %ld, so auto %s.\n", c.heads,
                c.dim, n, lhs, lhs < rhs ? "<" : ">=", rhs, lhs < rhs ? "merges" : "keeps every layer factorized");
  });
}

}  // namespace vitqk::cli
