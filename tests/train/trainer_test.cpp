// A training step's bits depend on the batch alone, not on the thread count: every kernel a
// slot runs must be the same on a 1-thread team as on a 2-thread one. Checked on the default
// model, whose products are large enough that a 1-thread run once took oneDNN where 2 threads
// took the register kernel (the input projection's backward), and on both attention forms.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "core/rng.h"
#include "testing.h"
#include "train/trainer.h"

namespace vitqk {
namespace {

namespace fs = std::filesystem;

TEST(Trainer, OneAndTwoThreadsGiveTheSameWeights) {
  if (!testing::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  const std::string dir = testing::fresh_test_dir("threads");
  for (const std::string form : {"factorized", "merged"}) {
    std::string model[2];
    for (int threads : {1, 2}) {
      const std::string out = dir + "/" + form + std::to_string(threads);
      // Two steps of the default batch (128 images, 16 slots).
      const std::string cmd = std::string(VITQK_BINARY) + " train --limit-train 256 --limit-test 128 --epochs 1" +
                              " --attention " + form + " --threads " + std::to_string(threads) + " -q --out " + out +
                              " > /dev/null";
      ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
      model[threads - 1] = testing::slurp(out + "/model.safetensors");
    }
    ASSERT_FALSE(model[0].empty());
    EXPECT_TRUE(model[0] == model[1]) << form << ": 1 and 2 threads trained different weights";
  }
  fs::remove_all(dir);
}


// A slot's images run forward and backward a few at a time (TrainOptions::pass_rows); the
// weights, the loss and the accuracy must not depend on how many: 1, 2 or all 4 of a slot's
// images per pass, in all four attention forms, over two steps of random images.
TEST(Trainer, ImagesPerPassDoNotChangeTheBits) {
  const ViTConfig base = testing::tiny_config(2, 16, 8, 4);  // 5 tokens per image
  DataSplits data;
  Rng rng(17);
  for (Dataset* d : {&data.train, &data.test}) {
    d->count = d == &data.train ? 128 : 16, d->channels = 3, d->height = d->width = 8;
    d->pixels.resize(size_t(d->count) * d->image_bytes());
    for (uint8_t& p : d->pixels) p = uint8_t(rng.below(256));
    for (int i = 0; i < d->count; ++i) d->labels.push_back(int32_t(rng.below(7)));
    for (int k = 0; k < 7; ++k) d->class_names.push_back(std::to_string(k));
  }
  data.description = "random";
  const std::string dir = testing::fresh_test_dir("passes");
  for (Form qk : {Form::Factorized, Form::Merged})
    for (Form ov : {Form::Factorized, Form::Merged}) {
      ViTConfig c = base;
      c.qk.assign(c.depth, qk);
      c.ov.assign(c.depth, ov);
      std::string model[3];
      std::vector<nlohmann::json> log[3];
      const int rows[3] = {5, 10, 256};  // a batch of 64 is 16 slots of 4 images
      for (int t = 0; t < 3; ++t) {
        TrainOptions o;
        o.epochs = 1, o.batch = 64, o.progress = false, o.preloaded = &data, o.pass_rows = rows[t];
        o.out = dir + "/" + form_name(qk) + form_name(ov) + std::to_string(rows[t]);
        log[t] = train(c, o);
        model[t] = testing::slurp(o.out + "/model.safetensors");
        for (auto& r : log[t]) r.erase("images_per_s");
      }
      ASSERT_FALSE(model[0].empty());
      for (int t = 1; t < 3; ++t) {
        EXPECT_TRUE(model[t] == model[0]) << form_name(qk) << "/" << form_name(ov) << ": " << rows[t]
                                          << " rows per pass trained other weights than 5";
        EXPECT_EQ(log[t], log[0]) << form_name(qk) << "/" << form_name(ov);
      }
    }
  fs::remove_all(dir);
}

TEST(Trainer, DivergenceStopsWithAnErrorAndWritesNoModel) {
  if (!testing::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  const std::string dir = testing::fresh_test_dir("diverge");
  const std::string err = dir + "/err.txt";
  const std::string cmd = std::string(VITQK_BINARY) +
                          " train --limit-train 2048 --limit-test 128 --epochs 1 --lr 1e6 --clip 0 -q --out " + dir +
                          "/run > /dev/null 2> " + err;
  const int rc = std::system(cmd.c_str());
  EXPECT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) == 1) << cmd;
  const std::string msg = testing::slurp(err);
  EXPECT_EQ(msg.rfind("vitqk: error: training diverged at step ", 0), 0u) << msg;
  EXPECT_NE(msg.find("lower --lr (1e+06)"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(dir + "/run/model.safetensors"));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace vitqk
