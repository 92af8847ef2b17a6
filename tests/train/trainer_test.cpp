// A training step's bits depend on the batch alone, not on the thread count: every kernel a
// slot runs must be the same on a 1-thread team as on a 2-thread one. Checked on the default
// model, whose products are large enough that a 1-thread run once took oneDNN where 2 threads
// took the register kernel (the input projection's backward), and on both attention forms.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "testing.h"

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
