// The study end to end on a tiny budget: real Fashion-MNIST (a few hundred images), a small
// model, two attention shapes. Checks the findings (exact conversions, costs) and that the
// report shows the numbers of results.json, then that a rerun reuses the training runs.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "study/study.h"
#include "testing.h"

namespace vitqk {
namespace {

using json = nlohmann::json;

std::string pct(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f%%", 100 * v);
  return b;
}

int count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
  return n;
}

void WritesTheThreeFilesAndNothingHalfWritten(const StudyOptions& o, const json& r) {
  for (const char* f : {"results.json", "report.md", "report.html"})
    EXPECT_TRUE(std::filesystem::exists(o.out + "/" + f)) << f;
  for (const auto& e : std::filesystem::directory_iterator(o.out))
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
  EXPECT_EQ(json::parse(testing::slurp(o.out + "/results.json")), r);
}

void ConversionsAreExactAndTrainedMergedModelsAreNot(const StudyOptions& o, const json& r) {
  const json& eq = r["equivalence"];
  ASSERT_EQ(eq["random"].size(), 1u);
  ASSERT_EQ(eq["trained"].size(), 1u);
  for (const auto* group : {&eq["random"], &eq["trained"]})
    for (const auto& m : *group)
      for (const char* k : {"merge_qk", "merge_qk_ov", "round_trip"}) {
        EXPECT_LT(m[k]["max_abs_logit_diff"].get<double>(), 1e-4) << m["model"] << " " << k;
        EXPECT_GT(m[k]["max_abs_logit"].get<double>(), 0.1) << "a model with all-zero logits proves nothing";
      }
  // Merged models trained from a random full-rank start keep more than rank d_h per head.
  ASSERT_EQ(eq["unmerge_trained_merged"].size(), 2u);
  const json &product_init = eq["unmerge_trained_merged"][0], &random_init = eq["unmerge_trained_merged"][1];
  EXPECT_GT(random_init["largest_numerical_rank"].get<int>(), random_init["d_h"].get<int>());
  EXPECT_GT(random_init["rel_error_mean"].get<double>(), 0.01);
  // A product start is rank d_h at step 0 and stays close to it after a few steps.
  EXPECT_LT(product_init["rel_error_mean"].get<double>(), random_init["rel_error_mean"].get<double>());
}

void CostsFollowTheFormulas(const StudyOptions& o, const json& r) {
  for (const auto& m : r["costs"]["models"]) {
    const double d = m["dim"], n = m["tokens"], H = m["heads"];
    EXPECT_NEAR(m["qk_params_ratio"].get<double>(), H / 2, 1e-12) << m["label"];
    EXPECT_NEAR(m["crossover_d_h"].get<double>(), d * (d + n) / (2 * d + n), 1e-9);
    // auto merges exactly the layers whose heads pass the crossover (all or none here).
    const bool pays = m["d_h"].get<double>() > m["crossover_d_h"].get<double>();
    EXPECT_EQ(m["auto_merged_qk_layers"].get<int>(), pays ? m["depth"].get<int>() : 0) << m["label"];
  }
}

void TrainingRecordsEverySeedAndEpoch(const StudyOptions& o, const json& r) {
  const json& t = r["training"];
  ASSERT_EQ(t["variants"].size(), 3u);
  for (const auto& v : t["variants"]) {
    ASSERT_EQ(v["runs"].size(), 2u);
    for (const auto& r : v["runs"]) ASSERT_EQ(r["history"].size(), 2u);
    const double a0 = v["runs"][0]["history"][1]["test_acc"], a1 = v["runs"][1]["history"][1]["test_acc"];
    EXPECT_NEAR(v["final_test_acc"]["mean"].get<double>(), (a0 + a1) / 2, 1e-12);
    EXPECT_GT(v["final_test_acc"]["mean"].get<double>(), 0.3) << v["name"] << " learned nothing";
  }
  ASSERT_EQ(t["spectra"].size(), 3u);
  // The factorized model's heads cannot exceed rank d_h.
  EXPECT_LE(t["spectra"][0]["numerical_rank"]["max"].get<double>(), t["spectra"][0]["d_h"].get<double>());
}

void ReportShowsTheNumbersOfResultsJson(const StudyOptions& o, const json& r) {
  const std::string md = testing::slurp(o.out + "/report.md"), html = testing::slurp(o.out + "/report.html");
  // Charts: 2 costs + 2 speed + 2 training curves + 1 spectra, each labelled.
  EXPECT_EQ(count(html, "<svg "), 7);
  EXPECT_EQ(count(html, "<figcaption>"), 7);
  EXPECT_EQ(count(html, "</svg>"), 7);
  for (const char* label : {"test accuracy (%)", "GMACs per image (log scale)", "images/s (log scale)", "epoch"})
    EXPECT_NE(html.find(label), std::string::npos) << label;
  EXPECT_EQ(html.find("nan"), std::string::npos);
  EXPECT_EQ(html.find("inf\""), std::string::npos);
  EXPECT_EQ(html.find("http"), html.find("http://www.w3.org/2000/svg")) << "the report must not fetch anything";
  // Markdown's code spans become <code> in the HTML, not literal backticks.
  EXPECT_EQ(html.find('`'), std::string::npos) << html.substr(html.find('`') == std::string::npos ? 0 : html.find('`'), 80);
  EXPECT_NE(html.find("<code>"), std::string::npos);
  EXPECT_NE(md.find('`'), std::string::npos);
  EXPECT_EQ(md.find("DESIGN.md"), std::string::npos) << "the report cites what a reader has";
  for (const auto& v : r["training"]["variants"]) {
    const std::string acc = pct(v["final_test_acc"]["mean"]);
    EXPECT_NE(md.find(acc), std::string::npos) << acc;
    EXPECT_NE(html.find(acc), std::string::npos) << acc;
  }
  for (const auto& f : r["verdict"]["findings"]) EXPECT_NE(md.find(f.get<std::string>()), std::string::npos) << f;
  EXPECT_NE(md.find(r["verdict"]["summary"].get<std::string>()), std::string::npos);
  EXPECT_GE(r["verdict"]["claims"].size(), 3u);
  EXPECT_NE(md.find("--quick run"), std::string::npos);
}

void RerunReusesTheFinishedTrainingRuns(const StudyOptions& o, const json& r) {
  const json again = run_study(o);
  for (size_t v = 0; v < again["training"]["variants"].size(); ++v)
    for (size_t s = 0; s < 2; ++s) {
      const json& run = again["training"]["variants"][v]["runs"][s];
      EXPECT_TRUE(run["reused"].get<bool>());
      EXPECT_EQ(run["history"], r["training"]["variants"][v]["runs"][s]["history"]);
    }
}

// One tiny study (~30 s: mostly reading Fashion-MNIST for each run) shared by every check.
TEST(Study, TinyRunEndToEnd) {
  std::string tmpl = ::testing::TempDir() + "vitqk_study_XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
  StudyOptions o = study_defaults(true);
  o.out = tmpl;
  o.model = testing::tiny_config(2, 16, 28, 7);
  o.model.in_chans = 1, o.model.num_classes = 10;
  o.model.preprocess = preset("fmnist").preprocess;
  o.seeds = 2, o.epochs = 2, o.batch = 32;
  o.limit_train = 1024, o.limit_test = 256;
  o.grid = {{32, 1, 17}, {32, 4, 17}};
  o.speed_models = {"fmnist"};
  o.speed_runs = 1;
  o.equivalence_models = {"fmnist"};
  o.progress = false;
  ::testing::internal::CaptureStderr();
  const json r = run_study(o);
  const std::string err = ::testing::internal::GetCapturedStderr();
  // The study resumes interrupted runs without being asked: no note about a --resume flag.
  EXPECT_EQ(err.find("--resume"), std::string::npos) << err;
  {
    SCOPED_TRACE("WritesTheThreeFilesAndNothingHalfWritten");
    WritesTheThreeFilesAndNothingHalfWritten(o, r);
  }
  {
    SCOPED_TRACE("ConversionsAreExactAndTrainedMergedModelsAreNot");
    ConversionsAreExactAndTrainedMergedModelsAreNot(o, r);
  }
  {
    SCOPED_TRACE("CostsFollowTheFormulas");
    CostsFollowTheFormulas(o, r);
  }
  {
    SCOPED_TRACE("TrainingRecordsEverySeedAndEpoch");
    TrainingRecordsEverySeedAndEpoch(o, r);
  }
  {
    SCOPED_TRACE("ReportShowsTheNumbersOfResultsJson");
    ReportShowsTheNumbersOfResultsJson(o, r);
  }
  {
    SCOPED_TRACE("RerunReusesTheFinishedTrainingRuns");
    RerunReusesTheFinishedTrainingRuns(o, r);
  }
  std::filesystem::remove_all(o.out);
}

}  // namespace
}  // namespace vitqk
