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
  static int seeds = 0, epochs = 0, train_images = -1, test_images = -1;
  static ThreadFlag threads;
  app->add_option("-o,--out", out, "Output directory (reports, results.json, training runs)")->capture_default_str();
  app->add_flag("--quick", quick, "About a minute: 2 epochs on 8000 images, fewer shapes and models");
  app->add_option("--seeds", seeds, "Training seeds per form (default 3)")->check(CLI::Range(1, 100));
  app->add_option("--epochs", epochs, "Training epochs per run (default 3; --quick: 2)")->check(CLI::Range(1, 1000));
  app->add_option("--train-images", train_images, "Use the first N training images (0: all; --quick: 8000)")
      ->check(kNonNegative);
  app->add_option("--test-images", test_images, "Use the first N test images (0: all; --quick: 2000)")
      ->check(kNonNegative);
  app->add_flag("-q,--quiet", quiet, "No training progress bars (stage lines still print)");
  threads.add(app);
  app->callback([] {
    threads.apply();
    catch_interrupts();
    StudyOptions o = study_defaults(quick);
    o.out = out;
    if (seeds > 0) o.seeds = seeds;
    if (epochs > 0) o.epochs = epochs;
    if (train_images >= 0) o.limit_train = train_images;
    if (test_images >= 0) o.limit_test = test_images;
    o.progress = !quiet;
    const nlohmann::json r = run_study(o);
    std::printf("\nVerdict: %s\n\n", r["verdict"]["summary"].get<std::string>().c_str());
    for (const auto& s : r["verdict"]["findings"]) std::printf("- %s\n", s.get<std::string>().c_str());
    std::printf("\nReport: %s/report.html (also report.md, results.json)\n", out.c_str());
  });
}

}  // namespace vitqk::cli
