// vitqk train / eval: Fashion-MNIST (or any IDX / image-folder data) with either form;
// `mpirun -np N vitqk train ...` trains data-parallel (see train/trainer.h).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "dist/comm.h"
#include "model/convert.h"
#include "train/trainer.h"

namespace vitqk::cli {

namespace {

ViTConfig model_config(const std::string& preset_name, const std::string& config_file) {
  if (config_file.empty()) return preset(preset_name);
  std::ifstream f(config_file);
  if (!f) fail(config_file, ": cannot open model config");
  return config_from_text(std::string(std::istreambuf_iterator<char>(f), {}), config_file);
}

}  // namespace

void add_train(CLI::App& root) {
  auto* app = root.add_subcommand("train", "Train a ViT (factorized or merged attention) on image classification data");
  static TrainOptions o;
  static ThreadFlag threads;
  static std::string preset_name = "fmnist", config_file, attention = "factorized", ov = "factorized",
                     merged_init = "product", weight_init = "jax";
  static bool no_augment = false, quiet = false;
  app->add_option("--data", o.data, "fashion-mnist, a folder of IDX files, or an image folder (DIR/CLASS/*.png)")
      ->capture_default_str();
  app->add_option("-p,--preset", preset_name, "Model size: fmnist (28x28, patch 4, width 64, depth 6, 4 heads), vit-ti16, ...")
      ->capture_default_str();
  app->add_option("--model-config", config_file, "Model config JSON (as in vitqk's __metadata__) instead of --preset")
      ->check(CLI::ExistingFile);
  const auto forms = CLI::IsMember({"factorized", "merged", "auto"});
  app->add_option("--attention", attention, "Query-key form: factorized, merged or auto")->check(forms)->capture_default_str();
  app->add_option("--ov", ov, "Value-output form: factorized, merged or auto")->check(forms)->capture_default_str();
  app->add_option("--merged-init", merged_init, "Start merged matrices as the product of a standard init, or random full rank")
      ->check(CLI::IsMember({"product", "random"}))
      ->capture_default_str();
  app->add_option("--weight-init", weight_init, "Initialisation scheme, as timm's weight_init: timm (normal 0.02) or jax (Xavier)")
      ->check(CLI::IsMember({"timm", "jax"}))
      ->capture_default_str();
  app->add_option("--epochs", o.epochs, "Epochs")->check(CLI::Range(1, 100000))->capture_default_str();
  app->add_option("--batch", o.batch, "Batch size (under mpirun: the global batch, split over the processes)")
      ->check(CLI::Range(1, 1 << 16))
      ->capture_default_str();
  app->add_option("--lr", o.opt.lr, "Peak learning rate")->check(kPositive)->capture_default_str();
  app->add_option("--min-lr", o.opt.min_lr, "Final learning rate of the cosine schedule")->check(kNonNegative)->capture_default_str();
  app->add_option("--wd", o.opt.wd, "AdamW weight decay (matrices only)")->check(kNonNegative)->capture_default_str();
  app->add_option("--warmup-epochs", o.warmup_epochs, "Linear warm-up, in epochs")->check(kNonNegative)->capture_default_str();
  app->add_option("--clip", o.opt.clip, "Max global gradient norm (0: off)")->check(kNonNegative)->capture_default_str();
  app->add_option("--label-smoothing", o.label_smoothing, "Label smoothing")->check(CLI::Range(0.0, 0.99))->capture_default_str();
  app->add_option("--seed", o.seed, "Seed of initialisation, data order and augmentation")->capture_default_str();
  app->add_flag("--no-augment", no_augment, "Turn off random crop and horizontal flip");
  static int augment_from = 2;
  app->add_option("--augment-from", augment_from, "First epoch (1-based) with augmentation")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app->add_option("--crop-pad", o.augment.pad, "Augmentation: zero padding around the random crop (pixels)")
      ->check(CLI::Range(0, 64))
      ->capture_default_str();
  app->add_option("--limit-train", o.limit_train, "Use only the first N training images (0: all)")->check(kNonNegative);
  app->add_option("--limit-test", o.limit_test, "Use only the first N test images (0: all)")->check(kNonNegative);
  app->add_option("--save-every", o.save_every, "Also checkpoint every N steps")->check(kNonNegative);
  app->add_option("-o,--out", o.out, "Output directory (checkpoint, model, log.jsonl)")->capture_default_str();
  app->add_flag("--resume", o.resume, "Continue from OUT/checkpoint.safetensors");
  app->add_flag("-q,--quiet", quiet, "No progress display");
  threads.add(app);
  app->callback([] {
    threads.apply();
    catch_interrupts();
    o.augment.enabled = !no_augment;
    o.augment.from_epoch = augment_from - 1;
    o.progress = !quiet;
    o.merged_init = parse_merged_init(merged_init);
    o.weight_init = parse_weight_init(weight_init);
    if (o.opt.min_lr > o.opt.lr) fail("--min-lr ", o.opt.min_lr, " is above --lr ", o.opt.lr, ": the schedule decays from --lr to --min-lr");
    ViTConfig c = model_config(preset_name, config_file);
    c.qk = choose_forms(c, attention, true);
    c.ov = choose_forms(c, ov, false);
    // Said here, not in train(): the study resumes its runs as a matter of course.
    if (o.resume && dist::world().rank() == 0 && !std::filesystem::exists(checkpoint_path(o.out)))
      std::fprintf(stderr, "note: --resume: no %s yet; starting afresh\n", checkpoint_path(o.out).c_str());
    const auto history = train(c, o);
    if (dist::world().rank() != 0) return;  // under mpirun, rank 0 speaks for the run
    if (!history.empty()) {
      const auto& last = history.back();
      std::printf("epoch %d: test accuracy %.2f%%, test loss %.4f, %.0f training images/s\n", last["epoch"].get<int>(),
                  100 * last["test_acc"].get<double>(), last["test_loss"].get<double>(),
                  last["images_per_s"].get<double>());
    }
    std::printf("wrote %s/model.safetensors and %s/log.jsonl\n", o.out.c_str(), o.out.c_str());
  });
}

void add_eval(CLI::App& root) {
  auto* app = root.add_subcommand("eval", "Accuracy, loss, per-class accuracy and confusion matrix on a test split");
  static ModelFlags model;
  static ThreadFlag threads;
  static std::string data = "fashion-mnist";
  static int limit = 0;
  static bool json = false;
  model.add(app);
  threads.add(app);
  app->add_option("--data", data, "fashion-mnist, a folder of IDX files, or an image folder")->capture_default_str();
  app->add_option("--limit", limit, "Use only the first N test images (0: all)")->check(kNonNegative);
  app->add_flag("--json", json, "Print JSON");
  app->callback([] {
    threads.apply();
    const ViT m = model.load().model;
    const DataSplits d = load_data(data, 1, limit);
    const EvalResult r = evaluate(m, d.test, data);
    const auto& names = d.test.class_names;
    if (json) {
      nlohmann::json j = {{"accuracy", r.accuracy}, {"loss", r.loss}, {"images", d.test.count},
                          {"classes", names},       {"per_class_accuracy", r.per_class},
                          {"confusion", r.confusion}};
      std::printf("%s\n", j.dump(2).c_str());
      return;
    }
    std::printf("%s on %s (%d test images): accuracy %.2f%%, loss %.4f\n", model.path.c_str(), data.c_str(),
                d.test.count, 100 * r.accuracy, r.loss);
    std::printf("\n%-14s %8s   confusion (rows: true, columns: predicted)\n", "class", "accuracy");
    for (size_t k = 0; k < r.per_class.size(); ++k) {
      std::printf("%-14.14s %7.2f%%  ", names[k].c_str(), 100 * r.per_class[k]);
      for (long v : r.confusion[k]) std::printf(" %5ld", v);
      std::printf("\n");
    }
  });
}

}  // namespace vitqk::cli
