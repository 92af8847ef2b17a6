// Part 2 of the study: parameters and compute of both forms, from the cost model, for the
// standard ViTs and for single-head and wide-head variants, with the crossover of the README's "The math in one screen".
#include "core/error.h"
#include "model/cost.h"
#include "study/study.h"

namespace vitqk {

namespace {

nlohmann::json cost_json(const Cost& c) { return {{"params", c.params}, {"macs", c.macs}}; }

nlohmann::json model_entry(const std::string& label, const ViTConfig& c) {
  const int n = c.tokens(), D = c.dim, H = c.heads;
  const ViTConfig fact = with_forms(c, Form::Factorized, Form::Factorized);
  const ViTConfig auto_c = auto_forms(fact);
  int auto_qk = 0, auto_ov = 0;
  for (int l = 0; l < c.depth; ++l) auto_qk += auto_c.qk[l] == Form::Merged, auto_ov += auto_c.ov[l] == Form::Merged;
  const Cost qf = qk_cost(D, H, n, Form::Factorized), qm = qk_cost(D, H, n, Form::Merged);
  return {{"label", label},
          {"dim", D},
          {"heads", H},
          {"d_h", D / H},
          {"depth", c.depth},
          {"tokens", n},
          // A merged head pays iff d_h > d (d + n) / (2 d + n) (README, "The math in one screen").
          {"crossover_d_h", double(D) * (D + n) / (2.0 * D + n)},
          {"qk_layer_factorized", cost_json(qf)},
          {"qk_layer_merged", cost_json(qm)},
          {"qk_params_ratio", double(qm.params) / double(qf.params)},
          {"qk_macs_ratio", double(qm.macs) / double(qf.macs)},
          {"factorized", cost_json(model_cost(fact).total())},
          {"merged_qk", cost_json(model_cost(with_forms(c, Form::Merged, Form::Factorized)).total())},
          {"merged_qk_ov", cost_json(model_cost(with_forms(c, Form::Merged, Form::Merged)).total())},
          {"auto", cost_json(model_cost(auto_c).total())},
          {"auto_merged_qk_layers", auto_qk},
          {"auto_merged_ov_layers", auto_ov}};
}

ViTConfig with_heads(const std::string& name, int heads) {
  ViTConfig c = preset(name);
  c.heads = heads;
  c.validate(name);
  return c;
}

}  // namespace

nlohmann::json study_costs() {
  nlohmann::json models = nlohmann::json::array();
  for (const char* name : {"vit-ti16", "vit-s16", "vit-b16", "vit-l16", "fmnist"})
    models.push_back(model_entry(name, preset(name)));
  for (auto [name, heads] : {std::pair{"vit-ti16", 1}, {"vit-s16", 1}, {"vit-b16", 1}, {"vit-b16", 2}, {"vit-b16", 4}})
    models.push_back(model_entry(cat(name, ", ", heads, heads == 1 ? " head" : " heads"), with_heads(name, heads)));
  // The query-key MAC ratio (merged / factorized) of one layer of width 768 against its head
  // width, at three token counts: below 1 only where d_h passes the crossover.
  nlohmann::json curves = nlohmann::json::array();
  for (int n : {50, 197, 577}) {
    nlohmann::json pts = nlohmann::json::array();
    for (int H : {1, 2, 3, 4, 6, 8, 12, 16, 24, 48}) {
      const double r = double(qk_cost(768, H, n, Form::Merged).macs) / double(qk_cost(768, H, n, Form::Factorized).macs);
      pts.push_back({{"heads", H}, {"d_h", 768 / H}, {"macs_ratio", r}});
    }
    curves.push_back({{"tokens", n}, {"dim", 768}, {"crossover_d_h", 768.0 * (768 + n) / (2.0 * 768 + n)}, {"points", pts}});
  }
  return {{"models", models}, {"qk_ratio_curves", curves}};
}

}  // namespace vitqk
