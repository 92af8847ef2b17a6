// Checkpoints that lose nothing: a real training process killed with SIGKILL and resumed
// ends with the same bits as an uninterrupted run; corrupt or mismatched checkpoints are
// refused.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "io/safetensors.h"
#include "testing.h"

namespace vitqk {
namespace {

namespace fs = std::filesystem;

using testing::slurp;

class Resume : public ::testing::Test {
 protected:
  std::string dir, cfg;
  void SetUp() override {
    if (!vitqk::testing::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
    dir = vitqk::testing::fresh_test_dir("resume");
    cfg = vitqk::testing::write_tiny_fmnist_config(dir);
  }
  void TearDown() override { fs::remove_all(dir); }

  std::vector<std::string> args(const std::string& out, const std::string& extra = "", int epochs = 2,
                                int threads = 1) {
    std::vector<std::string> a = {VITQK_BINARY, "train", "--model-config", cfg, "--limit-train", "2048",
                                  "--limit-test", "512", "--epochs", std::to_string(epochs), "--batch", "32",
                                  "--save-every", "5", "--threads", std::to_string(threads), "-q", "--out", out};
    std::istringstream ss(extra);
    for (std::string w; ss >> w;) a.push_back(w);
    return a;
  }
  static pid_t spawn(const std::vector<std::string>& a) {
    const pid_t pid = fork();
    if (pid == 0) {
      std::vector<char*> argv;
      for (auto& s : a) argv.push_back(const_cast<char*>(s.c_str()));
      argv.push_back(nullptr);
      freopen("/dev/null", "w", stdout);
      execv(argv[0], argv.data());
      _exit(127);
    }
    return pid;
  }
  static int wait_exit(pid_t pid) {
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  }
  static int run(const std::vector<std::string>& a) { return wait_exit(spawn(a)); }
};

TEST_F(Resume, KilledRunResumesToTheSameBits) {
  // The bits do not depend on the thread count (a step's sums are cut by the batch alone), so
  // the runs below resume on two threads what they began on one.
  const std::string a = dir + "/a";
  ASSERT_EQ(run(args(a, "", 2, 2)), 0);

  for (const std::string attention : {"factorized", "merged"}) {
    SCOPED_TRACE(attention);
    const std::string ref = dir + "/ref_" + attention, out = dir + "/killed_" + attention;
    ASSERT_EQ(run(args(ref, "--attention " + attention)), 0);
    // Kill as soon as the second mid-epoch checkpoint is being worked towards: well inside
    // epoch 1 of 2, so most of the run happens after the resume.
    const pid_t pid = spawn(args(out, "--attention " + attention));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (!fs::exists(out + "/checkpoint.safetensors") && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    EXPECT_EQ(wait_exit(pid), 128 + SIGKILL) << "the run finished before it could be killed";
    EXPECT_FALSE(fs::exists(out + "/model.safetensors")) << "killed too late to test a mid-epoch resume";
    ASSERT_EQ(run(args(out, "--attention " + attention + " --resume", 2, 2)), 0);
    EXPECT_EQ(slurp(out + "/model.safetensors"), slurp(ref + "/model.safetensors")) << "weights differ after resume";
    // The whole optimizer state too (the checkpoint's history differs only in timings).
    const io::SafeTensorsReader got(out + "/checkpoint.safetensors"), want(ref + "/checkpoint.safetensors");
    for (const char* t : {"params", "adam.m", "adam.v"}) EXPECT_EQ(got.read(*got.find(t)), want.read(*want.find(t))) << t;
  }
  // Same seed, one thread or two: same bits (the factorized reference was run twice).
  EXPECT_EQ(slurp(a + "/model.safetensors"), slurp(dir + "/ref_factorized/model.safetensors"));
}

TEST_F(Resume, CorruptOrMismatchedCheckpointIsRefused) {
  const std::string a = dir + "/a";
  ASSERT_EQ(run(args(a, "", 1)), 0);
  const std::string ckpt = a + "/checkpoint.safetensors";
  const std::string good = slurp(ckpt);
  // Different recipe: refused, checkpoint untouched.
  EXPECT_EQ(run(args(a, "--resume --lr 0.5", 1)), 1);
  EXPECT_EQ(slurp(ckpt), good);
  // A different attention form is named as such, before the tensors (of another size) are read.
  std::string cmd;
  for (const std::string& w : args(a, "--resume --attention merged", 1)) cmd += w + " ";
  const std::string err = dir + "/err.txt";
  EXPECT_NE(std::system((cmd + "> /dev/null 2> " + err).c_str()), 0);
  EXPECT_NE(slurp(err).find("checkpoint was made with a different model qk"), std::string::npos) << slurp(err);
  EXPECT_EQ(slurp(ckpt), good);
  // A flipped byte in the weights: the checksum catches it.
  std::string bad = good;
  bad[bad.size() - 7] ^= 0x40;
  std::ofstream(ckpt, std::ios::binary) << bad;
  EXPECT_EQ(run(args(a, "--resume", 1)), 1);
  // Truncated: the safetensors reader catches it.
  std::ofstream(ckpt, std::ios::binary) << good.substr(0, good.size() / 2);
  EXPECT_EQ(run(args(a, "--resume", 1)), 1);
}

}  // namespace
}  // namespace vitqk
