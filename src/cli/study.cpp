// vitqk study: the main job (see src/study/study.h).
#include <cstdio>

#include "cli/common.h"
#include "core/interrupt.h"
#include "study/study.h"

namespace vitqk::cli {

void add_study(CLI::App& root) {
  auto* app = root.add_subcommand(
      "study", "Answer the question with measured numbers: equivalence, costs, speed and training of both forms; "
               "writes report.html, report.md and results.json");
  static std::string out = "study";
  static bool quick = false, quiet = false;
  static int seeds = 0;
  static ThreadFlag threads;
  app->add_option("-o,--out", out, "Output directory (reports, results.json, training runs)")->capture_default_str();
  app->add_flag("--quick", quick, "A few minutes: 2 epochs on 4000 images, 2 seeds, fewer shapes and models");
  app->add_option("--seeds", seeds, "Training seeds per form (default 3; --quick: 2)")->check(CLI::Range(1, 100));
  app->add_flag("-q,--quiet", quiet, "No training progress bars (stage lines still print)");
  threads.add(app);
  app->callback([] {
    threads.apply();
    catch_interrupts();
    StudyOptions o = study_defaults(quick);
    o.out = out;
    if (seeds > 0) o.seeds = seeds;
    o.progress = !quiet;
    const nlohmann::json r = run_study(o);
    std::printf("\nVerdict:\n");
    for (const auto& s : r["verdict"]["findings"]) std::printf("- %s\n", s.get<std::string>().c_str());
    std::printf("\nReport: %s/report.html (also report.md, results.json)\n", out.c_str());
  });
}

}  // namespace vitqk::cli
