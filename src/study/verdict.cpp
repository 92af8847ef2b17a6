// Part 5 of the study: the conclusion, written from the measured numbers of the other parts.
// Every sentence is built from results.json values, so a rerun on another machine or with
// other seeds says what that run found.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "study/format.h"
#include "study/study.h"

namespace vitqk {

namespace {

using json = nlohmann::json;

using fmt::f, fmt::pct, fmt::sci, fmt::millions;

const json* find_model(const json& models, const std::string& label) {
  for (const auto& m : models)
    if (m["label"] == label || m.value("model", "") == label) return &m;
  return nullptr;
}

json claim(const std::string& text, const std::string& holds, const std::string& evidence) {
  return {{"claim", text}, {"holds", holds}, {"evidence", evidence}};
}

}  // namespace

json study_verdict(const json& r) {
  json findings = json::array(), claims = json::array();
  const json& eq = r["equivalence"];
  const json& costs = r["costs"];
  const json& speed = r["speed"];
  const json& tr = r["training"];

  // 1. Same function?
  double conv_diff = 0, conv_logit = 0, conv_agree = 1;
  for (const auto* group : {&eq["random"], &eq["trained"]})
    for (const auto& m : *group)
      for (const char* k : {"merge_qk", "merge_qk_ov", "round_trip"}) {
        conv_diff = std::max(conv_diff, m[k]["max_abs_logit_diff"].get<double>());
        conv_logit = std::max(conv_logit, m[k]["max_abs_logit"].get<double>());
        conv_agree = std::min(conv_agree, m[k]["prediction_agreement"].get<double>());
      }
  const std::string exact = cat("merging query-key (and value-output) and unmerging back changed no logit by more than ",
                                sci(conv_diff), " (logits up to ", f(conv_logit, 1), "; float32 rounding) and ",
                                pct(conv_agree, 1), " of predictions agree, biases included");
  findings.push_back("Same function: yes, for a model born factorized: " + exact + ".");
  claims.push_back(claim("Biases make merging impossible", "no",
                         "The query bias folds into one vector per head and the key bias drops out of the softmax "
                         "exactly: " + exact + "."));
  for (const auto& u : eq["unmerge_trained_merged"]) {
    findings.push_back(cat("Not the other way: a model trained merged (", u["model"].get<std::string>(),
                           ") is not a factorized model. Unmerging it to rank d_h = ", u["d_h"].get<int>(),
                           " per head, the most a factorized head holds, leaves a relative error of ",
                           pct(u["rel_error_mean"].get<double>(), 1), " on average (worst head ",
                           pct(u["rel_error_max"].get<double>(), 1), "), changes ",
                           pct(1 - u["prediction_agreement"].get<double>(), 1),
                           " of test predictions and moves test accuracy from ", pct(u["accuracy_before"].get<double>(), 1),
                           " to ", pct(u["accuracy_after"].get<double>(), 1), "."));
  }

  // 2. Parameters and compute.
  const json& models = costs["models"];
  const json* b16 = find_model(models, "vit-b16");
  const json* b16h1 = find_model(models, "vit-b16, 1 head");
  const json* b16h2 = find_model(models, "vit-b16, 2 heads");
  if (b16 && b16h1 && b16h2) {
    const json &b = *b16, &h1 = *b16h1, &h2 = *b16h2;
    claims.push_back(claim(
        "The parameter count is the same", "only with 2 heads",
        cat("Merged query-key stores one d x d matrix per head (H d^2 + H d) where the factorized form stores 2 d^2 + 2 d, "
            "a ratio of H/2: ", f(h2["qk_params_ratio"].get<double>()), "x with 2 heads, ", f(h1["qk_params_ratio"].get<double>()),
            "x with 1 head, ", f(b["qk_params_ratio"].get<double>()), "x for ViT-B/16's 12 heads, whose whole model grows from ",
            millions(b["factorized"]["params"].get<double>()), " to ", millions(b["merged_qk"]["params"].get<double>()),
            " parameters.")));
    findings.push_back(cat("Parameters and compute: merging pays only when a head is wider than d (d + n) / (2 d + n) (",
                           f(b["crossover_d_h"].get<double>(), 0), " for d = 768, n = ", b["tokens"].get<int>(),
                           "), i.e. for single-head layers. ViT-B/16 merged needs ", f(b["qk_macs_ratio"].get<double>()),
                           "x the query-key MACs, and the whole model ", f(b["merged_qk"]["macs"].get<double>() / 1e9), " vs ",
                           f(b["factorized"]["macs"].get<double>() / 1e9), " GMACs per image (",
                           f(b["merged_qk"]["macs"].get<double>() / b["factorized"]["macs"].get<double>()),
                           "x); a single-head ViT-B merged needs ",
                           f(h1["qk_macs_ratio"].get<double>()), "x, and `auto` merges ", h1["auto_merged_qk_layers"].get<int>(),
                           " of its ", h1["depth"].get<int>(), " layers while keeping all ", b["depth"].get<int>(),
                           " of ViT-B/16 factorized (", b["auto_merged_qk_layers"].get<int>(), " merged)."));
  }

  // 3. Speed.
  const json& al = speed["attention_layer"];
  double best_single = 1e9, worst_std = 0;
  std::string best_shape, worst_shape;
  for (const auto& p : al["points"]) {
    const double m = p["measured_ratio"];
    if (p["H"] == 1 && m < best_single) best_single = m, best_shape = cat("d = ", p["D"].get<int>(), ", n = ", p["n"].get<int>());
    if (p["H"].get<int>() > 2 && m > worst_std)
      worst_std = m, worst_shape = cat("d = ", p["D"].get<int>(), ", ", p["H"].get<int>(), " heads, n = ", p["n"].get<int>());
  }
  std::string model_speed;
  for (const auto& m : speed["models"])
    model_speed += cat(model_speed.empty() ? "" : "; ", m["model"].get<std::string>(), " ",
                       f(m["measured_time_ratio"].get<double>()), "x the time (predicted ", f(m["predicted_time_ratio"].get<double>()), "x)");
  const std::string speed_text =
      cat("One attention layer merged took ", f(best_single), "x the factorized time at best among single-head shapes (",
          best_shape, ") and up to ", f(worst_std), "x with standard multi-head shapes (", worst_shape,
          "). The cost model named the faster form at ", al["right"].get<int>(), " of the ", al["decided"].get<int>(),
          " shapes where the two differ by more than 10%. Whole models merged: ", model_speed, ".");
  findings.push_back("Speed: " + speed_text);
  claims.push_back(claim("The merged form is faster", best_single < 1 ? "only for single-head layers" : "no",
                         speed_text));

  // 4. Training.
  const json* fact = nullptr;
  for (const auto& v : tr["variants"])
    if (v["name"] == "factorized") fact = &v;
  std::string train_text;
  for (const auto& v : tr["variants"]) {
    const json& a = v["final_test_acc"];
    train_text += cat(train_text.empty() ? "" : "; ", v["label"].get<std::string>(), " ", pct(a["mean"].get<double>(), 2),
                      " (std ", f(100 * a["std"].get<double>(), 2), " points, ", v["runs"].size(), " seeds, ",
                      f(v["images_per_s"]["mean"].get<double>(), 0), " training images/s)");
  }
  std::string compare, short_training;
  if (fact) {
    const double fm = (*fact)["final_test_acc"]["mean"], fs = (*fact)["final_test_acc"]["std"];
    for (const auto& v : tr["variants"]) {
      if (&v == fact) continue;
      const double m = v["final_test_acc"]["mean"], s = v["final_test_acc"]["std"];
      const double diff = m - fm, spread = 2 * std::max({fs, s, 1e-4});
      const std::string verdict = std::fabs(diff) <= spread ? "within the seed-to-seed spread of" :
                                  diff < 0                 ? "worse than"
                                                           : "better than";
      compare += cat(" ", v["label"].get<std::string>(), ": ", diff >= 0 ? "+" : "", f(100 * diff, 2), " points, ",
                     verdict, " factorized (2 x the larger std = ", f(100 * spread, 2), " points).");
      short_training += cat(short_training.empty() ? "" : " and ", pct(m, 1), " (", v["label"].get<std::string>(), ", ",
                            verdict == std::string("within the seed-to-seed spread of") ? "within the seed spread"
                                                                                         : verdict + std::string(" factorized"),
                            ")");
    }
  }
  findings.push_back(cat("Training (", tr["epochs"].get<int>(), tr["epochs"] == 1 ? " epoch" : " epochs", " on ", tr["data"].get<std::string>(),
                         tr["limit_train"].get<int>() ? cat(", first ", tr["limit_train"].get<int>(), " images") : std::string(),
                         ", same recipe and seeds): final test accuracy ", train_text, ".", compare));
  for (const auto& s : tr["spectra"])
    findings.push_back(cat("Rank actually used (", s["label"].get<std::string>(), "): 99% of each head's squared singular values lie in its first ",
                           f(s["rank_for_99pct_energy"]["mean"].get<double>(), 1), " directions on average (max ",
                           f(s["rank_for_99pct_energy"]["max"].get<double>(), 0), " of ", s["dim"].get<int>(), "; a factorized head has ",
                           s["d_h"].get<int>(), ")."));
  // The answer in three sentences, for readers who stop here.
  std::string summary = cat("Merging W_q^T W_k is exact, biases included (no logit moved by more than ", sci(conv_diff), "), ");
  if (b16)
    summary += cat("but it pays only in single-head layers: for ViT-B/16 it multiplies the query-key parameters by ",
                   f((*b16)["qk_params_ratio"].get<double>()), " and their MACs by ", f((*b16)["qk_macs_ratio"].get<double>()), ".");
  else
    summary += "but it pays only in single-head layers.";
  for (const auto& m : speed["models"])
    if (m["model"] == "vit-b16" || &m == &speed["models"].back()) {
      summary += cat(" Measured here, ", m["model"].get<std::string>(), " merged took ", f(m["measured_time_ratio"].get<double>()),
                     "x the time of the factorized model.");
      break;
    }
  if (fact)
    summary += cat(" Trained from scratch with the same recipe, merged attention reached ", short_training, " against ",
                   pct((*fact)["final_test_acc"]["mean"].get<double>(), 1), " factorized.");
  return {{"summary", summary}, {"findings", findings}, {"claims", claims}};
}

}  // namespace vitqk
