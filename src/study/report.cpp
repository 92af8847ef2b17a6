#include "study/report.h"

#include <cctype>
#include <cmath>
#include <cstdio>

#include "core/error.h"
#include "study/format.h"
#include "study/svg.h"

namespace vitqk {

namespace {

using json = nlohmann::json;

using fmt::f, fmt::pct, fmt::sci, fmt::millions, fmt::giga;

bool numeric(const std::string& c) {
  return !c.empty() && (std::isdigit(static_cast<unsigned char>(c[0])) || c[0] == '-' || c[0] == '+');
}

// Text for the HTML: escaped, and Markdown's `code` spans as <code> (an odd backtick is left
// as it is).
std::string inline_html(const std::string& text) {
  const std::string e = svg::escape(text);
  if (std::count(e.begin(), e.end(), '`') % 2) return e;
  std::string out;
  bool open = false;
  for (char ch : e) {
    if (ch != '`') out += ch;
    else out += open ? "</code>" : "<code>", open = !open;
  }
  return out;
}

// One document, two renderings: every call appends to the Markdown and the HTML alike, so
// the two files cannot disagree.
class Doc {
 public:
  void heading(int level, const std::string& text) {
    md_ += std::string(level, '#') + " " + text + "\n\n";
    html_ += cat("<h", level, ">", inline_html(text), "</h", level, ">\n");
  }
  void para(const std::string& text) {
    md_ += text + "\n\n";
    html_ += "<p>" + inline_html(text) + "</p>\n";
  }
  void bullets(const std::vector<std::string>& items) {
    html_ += "<ul>\n";
    for (const auto& i : items) md_ += "- " + i + "\n", html_ += "<li>" + inline_html(i) + "</li>\n";
    md_ += "\n", html_ += "</ul>\n";
  }
  void table(const std::vector<std::string>& head, const std::vector<std::vector<std::string>>& rows) {
    auto md_row = [](const std::vector<std::string>& r) {
      std::string s = "|";
      for (const auto& c : r) s += " " + c + " |";
      return s + "\n";
    };
    md_ += md_row(head);
    md_ += "|" + [&] {
      std::string s;
      for (size_t i = 0; i < head.size(); ++i) s += "---|";
      return s;
    }() + "\n";
    for (const auto& r : rows) md_ += md_row(r);
    md_ += "\n";
    html_ += "<table><thead><tr>";
    for (const auto& h : head) html_ += "<th>" + inline_html(h) + "</th>";
    html_ += "</tr></thead><tbody>\n";
    for (const auto& r : rows) {
      html_ += "<tr>";
      for (const auto& c : r) html_ += (numeric(c) ? "<td class=\"n\">" : "<td>") + inline_html(c) + "</td>";
      html_ += "</tr>\n";
    }
    html_ += "</tbody></table>\n";
  }
  void figure(const std::string& svg_text, const std::string& caption) {
    ++figures_;
    md_ += cat("*Figure ", figures_, ": ", caption, "* (chart in report.html)\n\n");
    html_ += "<figure>" + svg_text + cat("<figcaption>Figure ", figures_, ": ", inline_html(caption), "</figcaption></figure>\n");
  }
  std::string markdown() const { return md_; }
  std::string html(const std::string& title) const {
    return "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>" + svg::escape(title) +
           "</title>\n<style>\n"
           "body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em;line-height:1.45;color:#222}\n"
           "table{border-collapse:collapse;margin:1em 0;font-size:0.9em}\n"
           "th,td{border:1px solid #bbb;padding:0.25em 0.6em;text-align:left;vertical-align:top}\n"
           "code{font-family:monospace;background:#f3f3f3;padding:0 0.2em}\n"
           "th{background:#f0f0f0}td.n{text-align:right;white-space:nowrap}\n"
           "figure{margin:1.5em 0;page-break-inside:avoid}figcaption{font-size:0.9em;color:#444}\n"
           "svg{max-width:100%;height:auto}h2{border-bottom:1px solid #ccc;margin-top:2em}\n"
           "@media print{body{max-width:none}h2{page-break-before:auto}}\n"
           "</style></head><body>\n" +
           html_ + "</body></html>\n";
  }

 private:
  std::string md_, html_;
  int figures_ = 0;
};

void run_info(Doc& d, const json& r) {
  const json& run = r["run"];
  const json& m = r["speed"]["machine"];
  d.para(cat("Measured on ", m["cpu"].get<std::string>(), " with ", run["threads"].get<int>(), " threads (fp32 FMA peak measured at ",
             f(m["peak_gflops"].get<double>(), 0), " GFLOP/s) by `", run["command"].get<std::string>(), "` in ",
             f(run["seconds"].get<double>() / 60, 1), " minutes, ", run["date"].get<std::string>(), ". Every number below is in results.json."));
  if (run["quick"].get<bool>())
    d.para(cat("This is a --quick run: ", run["quick_note"].get<std::string>(),
               " Its training figures are indicative only; run `vitqk study` without --quick for the full comparison."));
}

void verdict(Doc& d, const json& v) {
  d.heading(2, "Verdict");
  d.para(v["summary"]);
  std::vector<std::string> items;
  for (const auto& s : v["findings"]) items.push_back(s);
  d.bullets(items);
  d.para("The popular claims, checked:");
  std::vector<std::vector<std::string>> rows;
  for (const auto& c : v["claims"]) rows.push_back({c["claim"], c["holds"], c["evidence"]});
  d.table({"Claim", "Holds?", "Evidence from this run"}, rows);
}

void equivalence(Doc& d, const json& e) {
  d.heading(2, "1. Are the two forms the same function?");
  d.para("Each model is converted exactly (query-key merged, then value-output too) and back again by SVD, and every "
         "version is run on the same images. Random models get noise on every parameter so that no bias is zero.");
  std::vector<std::vector<std::string>> rows;
  for (const auto* group : {&e["random"], &e["trained"]})
    for (const auto& m : *group)
      for (auto [key, name] : {std::pair{"merge_qk", "merge query-key"}, {"merge_qk_ov", "merge query-key and value-output"},
                               {"round_trip", "merge both, then unmerge"}}) {
        const json& c = m[key];
        rows.push_back({m["model"], name, std::to_string(c["images"].get<int>()), sci(c["max_abs_logit_diff"]),
                        f(c["max_abs_logit"], 2), pct(c["prediction_agreement"])});
      }
  d.table({"Model", "Conversion", "Images", "Max |logit difference|", "Max |logit|", "Predictions agreeing"}, rows);
  rows.clear();
  for (const auto& u : e["unmerge_trained_merged"])
    rows.push_back({u["model"], std::to_string(u["d_h"].get<int>()), std::to_string(u["largest_numerical_rank"].get<int>()),
                    pct(u["rel_error_mean"]), pct(u["rel_error_max"]), pct(u["prediction_agreement"]),
                    pct(u["accuracy_before"]), pct(u["accuracy_after"])});
  if (!rows.empty()) {
    // The accuracies here are on the images the conversion was checked on, which --quick
    // limits below the training runs' test set: say how many, so they are not compared blindly.
    d.para(cat("The other way is not free: a model trained merged is unmerged by truncating each head's homogeneous "
               "matrix [A_h; u_h] to rank d_h (all a factorized head can hold), on the first ",
               e["unmerge_trained_merged"][0]["images"].get<int>(), " test images (section 4 measures on all of the run's "
               "test images, so the two can differ):"));
    d.table({"Model", "d_h", "Largest numerical rank", "Mean rel. error", "Worst head", "Predictions agreeing",
             "Accuracy merged", "Accuracy unmerged"},
            rows);
  }
}

void costs(Doc& d, const json& c) {
  d.heading(2, "2. Parameters and compute");
  d.para("From the cost model (the README's section The math in one screen), per image at 224x224 (fmnist: 28x28). A merged head pays iff "
         "d_h > d (d + n) / (2 d + n).");
  std::vector<std::vector<std::string>> rows;
  svg::BarChart bars{"Compute per image, both forms", "GMACs per image (log scale)", {}, {}, true};
  svg::Series fact{"factorized"}, merged{"merged query-key"};
  for (const auto& m : c["models"]) {
    rows.push_back({m["label"], std::to_string(m["dim"].get<int>()), std::to_string(m["heads"].get<int>()),
                    std::to_string(m["d_h"].get<int>()), std::to_string(m["tokens"].get<int>()), f(m["crossover_d_h"], 0),
                    f(m["qk_params_ratio"]) + "x", f(m["qk_macs_ratio"]) + "x", millions(m["factorized"]["params"]),
                    millions(m["merged_qk"]["params"]), giga(m["factorized"]["macs"]), giga(m["merged_qk"]["macs"]),
                    cat(m["auto_merged_qk_layers"].get<int>(), " of ", m["depth"].get<int>())});
    bars.categories.push_back(m["label"]);
    fact.y.push_back(m["factorized"]["macs"].get<double>() / 1e9);
    merged.y.push_back(m["merged_qk"]["macs"].get<double>() / 1e9);
  }
  d.table({"Model", "d", "H", "d_h", "n", "Crossover d_h", "QK params merged/fact", "QK MACs merged/fact", "Params fact",
           "Params merged", "GMACs fact", "GMACs merged", "auto merges QK in"},
          rows);
  bars.series = {fact, merged};
  // Category labels must fit: use short ones in the chart.
  for (auto& cat_label : bars.categories) {
    std::string s = cat_label;
    for (auto [from, to] : {std::pair{"vit-", ""}, {", 1 head", "/1h"}, {", 2 heads", "/2h"}, {", 4 heads", "/4h"}})
      if (auto p = s.find(from); p != std::string::npos) s.replace(p, std::string(from).size(), to);
    cat_label = s;
  }
  d.figure(svg::render(bars), "GMACs per image of each model, factorized vs merged query-key (/1h: one head).");
  svg::LineChart lc{"Query-key cost of one layer, d = 768", "head width d_h (log scale)", "merged / factorized MACs", {}, {},
                    true, true};
  for (const auto& curve : c["qk_ratio_curves"]) {
    svg::Series s{cat("n = ", curve["tokens"].get<int>(), " tokens")};
    for (const auto& p : curve["points"]) s.x.push_back(p["d_h"]), s.y.push_back(p["macs_ratio"]);
    lc.series.push_back(s);
  }
  lc.rules.push_back({false, 1.0, "equal cost"});
  d.figure(svg::render(lc), "The merged query-key path costs less than the factorized one only below the dashed line: "
                            "single-head layers (d_h = d).");
}

void speed(Doc& d, const json& s) {
  d.heading(2, "3. Which is faster?");
  const json& al = s["attention_layer"];
  d.para(cat("One attention layer (input projection, attention, output projection; one image) timed in both query-key "
             "forms over ", al["points"].size(), " shapes. The cost model named the faster form at ", al["right"].get<int>(),
             " of the ", al["decided"].get<int>(), " shapes where the two times differ by more than 10%."));
  svg::LineChart sc{"Attention layer: measured vs predicted", "predicted time ratio merged / factorized (MACs, log)",
                    "measured time ratio (log)", {}, {}, true, true};
  svg::Series single{"single-head layers"}, multi{"multi-head layers"}, diag{"measured = predicted"};
  single.line = multi.line = false;
  diag.markers = false, diag.dashed = true, diag.color = 7;
  double lo = 1e9, hi = 0;
  std::vector<std::vector<std::string>> rows;
  for (const auto& p : al["points"]) {
    svg::Series& t = p["H"] == 1 ? single : multi;
    const double pr = p["predicted_ratio"], me = p["measured_ratio"];
    t.x.push_back(pr), t.y.push_back(me);
    lo = std::min({lo, pr, me}), hi = std::max({hi, pr, me});
    rows.push_back({std::to_string(p["D"].get<int>()), std::to_string(p["H"].get<int>()), std::to_string(p["n"].get<int>()),
                    f(p["factorized_ms"], 3), f(p["merged_ms"], 3), f(me), f(pr),
                    p["right"].get<bool>() ? "yes" : (p["differ_by_10pct"].get<bool>() ? "NO" : "no (within 10%)")});
  }
  diag.x = diag.y = {lo, hi};
  sc.series = {single, multi, diag};
  sc.rules = {{false, 1.0, "same time"}, {true, 1.0, ""}};
  d.figure(svg::render(sc), "Each point is one layer shape; below 1 the merged form is faster. Points on the dashed "
                            "line run exactly as the MAC count predicts.");
  d.table({"d", "H", "n", "Factorized ms", "Merged ms", "Measured ratio", "Predicted ratio", "Faster form predicted"}, rows);

  rows.clear();
  svg::BarChart bars{"Whole models: throughput", "images/s (log scale)", {}, {}, true};
  svg::Series fact{"factorized"}, merged{"merged query-key"};
  for (const auto& m : s["models"]) {
    rows.push_back({m["model"], std::to_string(m["batch"].get<int>()), f(m["factorized"]["images_per_s"], 1),
                    f(m["merged"]["images_per_s"], 1), f(m["measured_time_ratio"]) + "x",
                    f(m["predicted_time_ratio"]) + "x", f(m["factorized"]["gflops"], 0), f(m["merged"]["gflops"], 0)});
    bars.categories.push_back(m["model"]);
    fact.y.push_back(m["factorized"]["images_per_s"]), merged.y.push_back(m["merged"]["images_per_s"]);
  }
  bars.series = {fact, merged};
  d.figure(svg::render(bars), "Images per second of whole models (random weights) in each form.");
  d.table({"Model", "Batch", "Factorized images/s", "Merged images/s", "Time merged/fact", "Predicted (MACs)",
           "GFLOP/s fact", "GFLOP/s merged"},
          rows);
  d.para("MACs here are those computed: at inference the last block computes queries, attention, output projection "
         "and MLP for the class token only (the one row the head reads), in either form.");
}

void training(Doc& d, const json& t) {
  d.heading(2, "4. Does training suffer?");
  const json model = t["model"];
  d.para(cat("The same ViT (", model["image_size"].get<int>(), "x", model["image_size"].get<int>(), ", patch ",
             model["patch_size"].get<int>(), ", width ", model["dim"].get<int>(), ", depth ", model["depth"].get<int>(), ", ",
             model["heads"].get<int>(), " heads) trained on ", t["data"].get<std::string>(),
             t["limit_train"].get<int>() ? cat(" (first ", t["limit_train"].get<int>(), " training images)") : std::string(),
             " for ", t["epochs"].get<int>(), t["epochs"] == 1 ? " epoch" : " epochs", ", batch ", t["batch"].get<int>(), ", AdamW lr ", t["lr"].get<double>(),
             ", seeds 0 to ", t["seeds"].get<int>() - 1,
             ", in three query-key forms: factorized; merged starting from the product of the same initialisation "
             "(the same function at step 0); merged starting from a random full-rank matrix of the same score variance."));
  svg::LineChart acc{"Test accuracy per epoch", "epoch", "test accuracy (%)", {}, {}, false, false, false, true};
  svg::LineChart loss{"Test loss per epoch", "epoch", "test cross-entropy", {}, {}, false, false, false, true};
  std::vector<std::vector<std::string>> rows;
  int vi = 0;
  for (const auto& v : t["variants"]) {
    const size_t epochs = v["runs"][0]["history"].size();
    svg::Series ma{v["label"].get<std::string>() + " (mean)"}, ml{v["label"].get<std::string>() + " (mean)"};
    ma.color = ml.color = vi;
    for (size_t e = 0; e < epochs; ++e) {
      double sa = 0, sl = 0;
      for (const auto& r : v["runs"]) sa += r["history"][e]["test_acc"].get<double>(), sl += r["history"][e]["test_loss"].get<double>();
      ma.x.push_back(double(e + 1)), ma.y.push_back(100 * sa / double(v["runs"].size()));
      ml.x.push_back(double(e + 1)), ml.y.push_back(sl / double(v["runs"].size()));
    }
    for (const auto& r : v["runs"]) {  // each seed, faint
      svg::Series sa{cat(v["label"].get<std::string>(), " seed ", r["seed"].get<int>())}, sl = sa;
      sa.in_legend = sl.in_legend = false, sa.markers = sl.markers = false;
      sa.opacity = sl.opacity = 0.3, sa.color = sl.color = vi;
      for (const auto& h : r["history"]) {
        sa.x.push_back(h["epoch"]), sa.y.push_back(100 * h["test_acc"].get<double>());
        sl.x.push_back(h["epoch"]), sl.y.push_back(h["test_loss"]);
      }
      acc.series.push_back(sa), loss.series.push_back(sl);
    }
    acc.series.push_back(ma), loss.series.push_back(ml);
    const json& a = v["final_test_acc"];
    rows.push_back({v["label"], std::to_string(v["params"].get<long>()), pct(a["mean"]) + " ± " + f(100 * a["std"].get<double>(), 2),
                    pct(a["min"]) + " to " + pct(a["max"]), f(v["final_test_loss"]["mean"], 4),
                    f(v["images_per_s"]["mean"], 0)});
    ++vi;
  }
  d.figure(svg::render(acc), "Mean over seeds (bold) and each seed (faint).");
  d.figure(svg::render(loss), "Test loss (no label smoothing), mean over seeds (bold) and each seed (faint).");
  d.table({"Query-key form", "Parameters", "Final test accuracy (mean ± std over seeds)", "Range", "Final test loss",
           "Training images/s"},
          rows);

  d.para("How much rank does a head use? The singular values of each head's homogeneous query-key matrix [A_h; u_h] "
         "(seed 0; the factorized model merged exactly), normalised by the largest and averaged over heads and layers. "
         "A factorized head cannot exceed rank d_h.");
  svg::LineChart sp{"Singular-value spectra of the query-key matrices", "index of singular value",
                    "sigma_i / sigma_1 (log scale)", {}, {}, false, true};
  rows.clear();
  int dh = 0;
  for (const auto& s : t["spectra"]) {
    svg::Series se{s["label"].get<std::string>()};
    se.markers = false;
    const auto& curve = s["mean_normalized_spectrum"];
    for (size_t i = 0; i < curve.size(); ++i)
      if (curve[i].get<double>() > 1e-7) se.x.push_back(double(i + 1)), se.y.push_back(curve[i]);
    sp.series.push_back(se);
    dh = s["d_h"];
    rows.push_back({s["label"], std::to_string(s["heads"].get<int>()), std::to_string(dh),
                    f(s["rank_for_99pct_energy"]["mean"], 1), f(s["rank_for_99pct_energy"]["max"], 0),
                    f(s["numerical_rank"]["mean"], 1), pct(s["rel_error_at_d_h"]["mean"])});
  }
  sp.rules.push_back({true, double(dh), cat("d_h = ", dh)});
  d.figure(svg::render(sp), "Values below 1e-7 are not drawn: the factorized model's heads stop at rank d_h.");
  d.table({"Model", "Heads (all layers)", "d_h", "Rank for 99% energy (mean)", "(max)", "Numerical rank (mean)",
           "Rel. error truncated to d_h"},
          rows);
}

}  // namespace

Report render_report(const json& r) {
  Doc d;
  const std::string title = "Merging the query and key projections of a ViT: what happens";
  d.heading(1, title);
  run_info(d, r);
  verdict(d, r["verdict"]);
  equivalence(d, r["equivalence"]);
  costs(d, r["costs"]);
  speed(d, r["speed"]);
  training(d, r["training"]);
  d.heading(2, "Reproduce");
  d.para(cat("`", r["run"]["command"].get<std::string>(), "` (finished training runs in ", r["run"]["out"].get<std::string>(),
             "/runs are reused). vitqk ", r["run"]["version"].get<std::string>(), "."));
  return {d.markdown(), d.html(title)};
}

}  // namespace vitqk
