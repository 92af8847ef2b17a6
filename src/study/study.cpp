#include "study/study.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>

#include "core/error.h"
#include "core/interrupt.h"
#include "core/threads.h"
#include "io/atomic_file.h"
#include "study/report.h"

namespace vitqk {

StudyOptions study_defaults(bool quick) {
  StudyOptions o;
  o.quick = quick;
  if (quick) {
    o.epochs = 2, o.limit_train = 8000, o.limit_test = 2000;
    o.grid = attention_grid(true);
    o.speed_models = {"fmnist", "vit-ti16"};
    o.speed_runs = 3;
  }
  return o;
}

nlohmann::json run_study(const StudyOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  int stage = 0;
  const StageLog log = [&](const std::string& msg) {
    const int s = int(elapsed());
    std::fprintf(stderr, "[study %d/4 %d:%02d] %s\n", stage, s / 60, s % 60, msg.c_str());
  };
  auto next_stage = [&](const char* what) {
    if (interrupted())
      throw Interrupted(cat("interrupted; finished training runs are kept in ", o.out,
                            "/runs: run the same command again to continue"));
    ++stage;
    log(what);
  };
  std::filesystem::create_directories(o.out);

  nlohmann::json r;
  next_stage("training both forms (the longest part)");
  log(cat("reading ", o.data));
  const DataSplits data = load_data(o.data, o.limit_train, o.limit_test);
  r["training"] = study_training(o, data, log);
  next_stage("equivalence: converting models both ways");
  r["equivalence"] = study_equivalence(o, data, r["training"], log);
  next_stage("costs: parameters and MACs from the cost model");
  r["costs"] = study_costs();
  next_stage("speed: attention layers and whole models in both forms");
  r["speed"] = study_speed(o, log);
  if (interrupted()) throw Interrupted("interrupted before the report was written; run the same command again");

  char date[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  std::string command = "vitqk study";
  if (o.quick) command += " --quick";
  command += cat(" --out ", o.out, " --seeds ", o.seeds, " --epochs ", o.epochs, " --train-images ", o.limit_train,
                 " --test-images ", o.limit_test, " --threads ", max_threads());
  r["run"] = {{"command", command},
              {"out", o.out},
              {"quick", o.quick},
              {"quick_note", o.quick ? cat(o.epochs, " epochs on the first ", o.limit_train, " training and ", o.limit_test,
                                           " test images, ", o.seeds, " seeds, ", o.grid.size(), " attention shapes, ", o.speed_models.size(), " models timed.")
                                     : ""},
              {"seeds", o.seeds},
              {"threads", max_threads()},
              {"seconds", elapsed()},
              {"date", date},
              {"version", "0.1"}};
  r["verdict"] = study_verdict(r);
  const Report rep = render_report(r);
  io::write_file_atomic(o.out + "/results.json", r.dump(2) + "\n");
  io::write_file_atomic(o.out + "/report.md", rep.markdown);
  io::write_file_atomic(o.out + "/report.html", rep.html);
  log(cat("wrote ", o.out, "/report.html, report.md and results.json in ", int(elapsed() / 60), " min ",
          int(elapsed()) % 60, " s"));
  return r;
}

}  // namespace vitqk
