#pragma once
// `vitqk study`: one run that answers the project's question (why Wq and Wk are not merged, and what happens if they are) with numbers measured in it.
// Four parts, each a function that returns its section of results.json; the report (report.h)
// is written from that JSON alone, so every number it shows is one a script can check.
//   1. equivalence: are the two forms the same function? (conversions both ways)
//   2. costs:       parameters and MACs, the crossover, what `auto` picks (cost model)
//   3. speed:       attention layers and whole models in both forms, measured vs predicted
//   4. training:    factorized vs merged (product and random init), same data, recipe, seeds
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "measure/attention_grid.h"
#include "model/config.h"
#include "train/data.h"

namespace vitqk {

struct StudyOptions {
  std::string out = "study";
  bool quick = false;
  int seeds = 3;
  int threads = 0;  // 0: all cores
  // Training comparison (part 4); filled from `quick` by study_defaults().
  std::string data = "fashion-mnist";
  ViTConfig model = preset("fmnist");
  int epochs = 3, limit_train = 0, limit_test = 0, batch = 128;  // the rest of the recipe: TrainOptions' defaults
  // Speed (part 3): the attention grid, and whole models timed in both forms.
  std::vector<AttentionShape> grid = attention_grid(false);
  std::vector<std::string> speed_models = {"fmnist", "vit-ti16", "vit-s16", "vit-b16"};
  int speed_runs = 5;
  // Equivalence (part 1): random models converted both ways (trained ones come from part 4).
  std::vector<std::string> equivalence_models = {"fmnist", "vit-ti16"};
  bool progress = true;
};

// The defaults of a full or --quick study (seeds and threads are left as given).
StudyOptions study_defaults(bool quick);

using StageLog = std::function<void(const std::string&)>;

// `data`: load_data(o.data, o.limit_train, o.limit_test), read once for every run.
nlohmann::json study_training(const StudyOptions& o, const DataSplits& data, const StageLog& log);
nlohmann::json study_equivalence(const StudyOptions& o, const DataSplits& data, const nlohmann::json& training,
                                 const StageLog& log);
nlohmann::json study_costs();
nlohmann::json study_speed(const StudyOptions& o, const StageLog& log);
// The verdict: findings computed from the other sections (sentences with their numbers).
nlohmann::json study_verdict(const nlohmann::json& results);

// Runs every part, then writes OUT/results.json, OUT/report.md and OUT/report.html
// atomically. Finished training runs in OUT/runs are reused; an interrupted one resumes.
nlohmann::json run_study(const StudyOptions& o);

}  // namespace vitqk
