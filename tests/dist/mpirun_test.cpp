// Data-parallel training under a real `mpirun -np 2` over loopback TCP (btl tcp,self with
// pml ob1: the network path a cluster uses, not shared memory): the same weights as one
// process, a killed rank that ends the job and a run that resumes to the same bits, and
// ranks that disagree refused by name.
#include <gtest/gtest.h>
#include <signal.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "io/safetensors.h"
#include "testing.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

namespace vitqk {
namespace {

namespace fs = std::filesystem;
using testing::slurp;
using Args = std::vector<std::string>;

bool on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path ? path : "");
  for (std::string d; std::getline(dirs, d, ':');)
    if (!d.empty() && access((d + "/" + name).c_str(), X_OK) == 0) return true;
  return false;
}

class Mpirun : public ::testing::Test {
 protected:
  std::string dir, cfg;
  void SetUp() override {
    lock_machine();
    if (!vitqk::testing::have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
    ASSERT_TRUE(on_path("mpirun")) << "mpirun not found: scripts/install-deps.sh installs openmpi-bin";
    dir = vitqk::testing::fresh_test_dir("mpirun");
    cfg = vitqk::testing::write_tiny_fmnist_config(dir);
  }
  void TearDown() override {
    fs::remove_all(dir);
    if (lock_fd >= 0) close(lock_fd);
  }
  // One mpirun test at a time on this machine, across checkouts too. A job once exited before
  // its first checkpoint in CI, beside another suite: most likely that suite, running the same
  // test, removed the then shared temp dir (now per process, see SetUp); the lock also keeps
  // concurrent suites' mpirun jobs from competing for the cores.
  int lock_fd = -1;
  void lock_machine() {
    lock_fd = open("/tmp/vitqk-mpirun-tests.lock", O_CREAT | O_RDWR, 0666);
    ASSERT_GE(lock_fd, 0);
    ASSERT_EQ(flock(lock_fd, LOCK_EX), 0);
  }

  // vitqk train on the one-block model, one thread per process.
  Args train(const std::string& out, int limit_train, int epochs, const std::string& extra = "", int batch = 32) const {
    Args a = {VITQK_BINARY, "train", "--model-config", cfg, "--limit-train", std::to_string(limit_train),
              "--limit-test", "256", "--epochs", std::to_string(epochs), "--batch", std::to_string(batch),
              "--threads", "1", "-q", "--out", out};
    std::istringstream ss(extra);
    for (std::string w; ss >> w;) a.push_back(w);
    return a;
  }
  // mpirun over loopback TCP; `apps` are the commands of its ranks, one each (MPMD), or one
  // command for all `np` ranks.
  static Args mpirun(const std::vector<Args>& apps, int np = 2) {
    Args a = {"mpirun", "--oversubscribe", "--mca", "pml", "ob1", "--mca", "btl", "tcp,self", "--mca",
              "btl_tcp_if_include", "lo", "--mca", "oob_tcp_if_include", "lo", "-x", "ASAN_OPTIONS", "-x",
              "LSAN_OPTIONS"};
    if (geteuid() == 0) a.push_back("--allow-run-as-root");  // CI runs as root
    for (size_t i = 0; i < apps.size(); ++i) {
      if (i > 0) a.push_back(":");
      a.insert(a.end(), {"-np", std::to_string(apps.size() == 1 ? np : 1)});
      a.insert(a.end(), apps[i].begin(), apps[i].end());
    }
    return a;
  }
  // Starts a; its output goes to dir/stdout.txt and dir/stderr.txt.
  pid_t spawn(const Args& a) const {
    const std::string out = dir + "/stdout.txt", err = dir + "/stderr.txt";
    const pid_t pid = fork();
    if (pid == 0) {
      std::vector<char*> argv;
      for (auto& s : a) argv.push_back(const_cast<char*>(s.c_str()));
      argv.push_back(nullptr);
      freopen("/dev/null", "r", stdin);
      freopen(out.c_str(), "w", stdout);
      freopen(err.c_str(), "w", stderr);
      // Under ASan: OpenMPI's libraries are built without frame pointers, so only the slow
      // unwinder reaches their frames, which the suppressions name.
      const char* asan = std::getenv("ASAN_OPTIONS");
      setenv("ASAN_OPTIONS", (std::string(asan ? asan : "") + ":fast_unwind_on_malloc=0").c_str(), 1);
      setenv("LSAN_OPTIONS", ("suppressions=" + std::string(VITQK_FIXTURES) + "/../dist/openmpi.supp").c_str(), 1);
      execvp(argv[0], argv.data());
      _exit(127);
    }
    return pid;
  }
  static int exit_code(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status); }
  int run(const Args& a) const {
    int st = 0;
    waitpid(spawn(a), &st, 0);
    return exit_code(st);
  }
  std::string stderr_text() const { return slurp(dir + "/stderr.txt"); }
};

struct Finished {
  std::vector<float> params;
  ViTConfig cfg;
  nlohmann::json last;  // log.jsonl's last record
};

Finished read_run(const std::string& out) {
  const std::string ckpt = out + "/checkpoint.safetensors";
  const io::SafeTensorsReader r(ckpt);
  Finished f{r.read(*r.find("params")), checkpoint_config(ckpt), {}};
  std::ifstream log(out + "/log.jsonl");
  for (std::string line; std::getline(log, line);) f.last = nlohmann::json::parse(line);
  return f;
}

TEST_F(Mpirun, TwoRanksComputeWhatOneProcessComputes) {
  // Ten steps on one global batch of 32. A step cuts the batch into 16 slots whose gradients
  // are added in a fixed pairwise tree; each rank holds one half of the tree and the
  // all-reduce adds the two halves, a + b, exactly the last addition of one process. So the
  // weights, the losses and the predictions are the same bits, in both forms. (With one
  // all-reduce over the whole batch, the float sums would be ordered differently, and a
  // summation-order tolerance would be the best one could state.)
  const int limit = 320, steps = limit / 32;
  for (const std::string form : {"factorized", "merged"}) {
    SCOPED_TRACE(form);
    const std::string one = dir + "/one_" + form, two = dir + "/two_" + form;
    ASSERT_EQ(run(train(one, limit, 1, "--attention " + form)), 0) << stderr_text();
    ASSERT_EQ(run(mpirun({train(two, limit, 1, "--attention " + form)})), 0) << stderr_text();
    const std::string said = slurp(dir + "/stdout.txt");
    ASSERT_NE(said.find("wrote"), std::string::npos) << said;
    EXPECT_EQ(said.find("wrote"), said.rfind("wrote")) << "more than one rank reported:\n" << said;
    const Finished a = read_run(one), b = read_run(two);
    ASSERT_EQ(a.params.size(), b.params.size());
    size_t differ = 0;
    for (size_t i = 0; i < a.params.size(); ++i) differ += a.params[i] != b.params[i];
    EXPECT_EQ(differ, 0u) << "of " << a.params.size() << " weights differ";
    EXPECT_EQ(b.last["ranks"], 2);
    EXPECT_EQ(b.last["step"], steps);
    EXPECT_EQ(b.last["train_loss"], a.last["train_loss"]);
    EXPECT_EQ(b.last["train_acc"], a.last["train_acc"]);
    // The test set is split over the ranks: the same predictions; the loss sums meet in
    // another order.
    EXPECT_EQ(b.last["test_acc"], a.last["test_acc"]);
    EXPECT_NEAR(b.last["test_loss"].get<double>(), a.last["test_loss"].get<double>(), 1e-12);
  }
}

// The process mpirun started as `rank` (0 if none).
pid_t rank_pid(pid_t launcher, int rank) {
  const std::string want = "OMPI_COMM_WORLD_RANK=" + std::to_string(rank);
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::istringstream stat(slurp(e.path().string() + "/stat"));
    std::string pid, comm, state;
    pid_t ppid = 0;
    stat >> pid >> comm >> state >> ppid;
    if (ppid != launcher) continue;
    const std::string env = slurp(e.path().string() + "/environ");
    std::istringstream vars(env);
    for (std::string v; std::getline(vars, v, '\0');)
      if (v == want) return pid_t(std::stol(name));
  }
  return 0;
}

TEST_F(Mpirun, KilledRankEndsTheJobAndTheRunResumes) {
  const std::string ref = dir + "/ref", out = dir + "/killed";
  auto args = [&](const std::string& o, const std::string& extra = "") {
    return train(o, 2048, 2, "--save-every 5 " + extra);
  };
  ASSERT_EQ(run(mpirun({args(ref)})), 0) << stderr_text();

  const pid_t job = spawn(mpirun({args(out)}));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  int early = 0;
  while (!fs::exists(out + "/checkpoint.safetensors") && std::chrono::steady_clock::now() < deadline) {
    ASSERT_EQ(waitpid(job, &early, WNOHANG), 0) << "the job ended before its first checkpoint: " << stderr_text();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const pid_t victim = rank_pid(job, 1);
  ASSERT_GT(victim, 0) << "no rank 1 under mpirun " << job;
  ASSERT_EQ(kill(victim, SIGKILL), 0);
  // The surviving rank waits in an all-reduce for the dead one: mpirun must end the job.
  const auto killed = std::chrono::steady_clock::now();
  int status = 0;
  while (waitpid(job, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() - killed > std::chrono::seconds(30)) {
      kill(job, SIGKILL);
      waitpid(job, &status, 0);
      FAIL() << "the job still ran 30 s after rank 1 was killed";
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_NE(exit_code(status), 0);
  EXPECT_FALSE(fs::exists(out + "/model.safetensors")) << "killed too late to test a mid-run resume";

  // Another number of processes would sum differently: refused, naming the right command.
  ASSERT_EQ(run(args(out, "--resume")), 1);
  EXPECT_NE(stderr_text().find("mpirun -np 2"), std::string::npos) << stderr_text();

  ASSERT_EQ(run(mpirun({args(out, "--resume")})), 0) << stderr_text();
  EXPECT_EQ(slurp(out + "/model.safetensors"), slurp(ref + "/model.safetensors")) << "weights differ after resume";
  const io::SafeTensorsReader got(out + "/checkpoint.safetensors"), want(ref + "/checkpoint.safetensors");
  for (const char* t : {"params", "adam.m", "adam.v"}) EXPECT_EQ(got.read(*got.find(t)), want.read(*want.find(t))) << t;
}

TEST_F(Mpirun, DisagreeingRanksAndIndivisibleBatchesAreRefused) {
  const std::string out = dir + "/out";
  EXPECT_EQ(run(mpirun({train(out, 320, 1), train(out, 320, 1, "--seed 1")})), 1);
  EXPECT_NE(stderr_text().find("vitqk: error: rank 1: seed is 1, rank 0's is 0"), std::string::npos) << stderr_text();
  EXPECT_FALSE(fs::exists(out)) << "nothing is written before the ranks agree";

  EXPECT_EQ(run(mpirun({train(out, 320, 1, "", 33)})), 1);
  EXPECT_NE(stderr_text().find("--batch 33 is the global batch"), std::string::npos) << stderr_text();

  // A bad flag on one rank only: that rank fails while parsing, before any collective, and
  // the other used to wait in its first all-reduce for ever. Both now stop at the agreement
  // that follows every parse (the test's own limit is ctest's timeout).
  EXPECT_EQ(run(mpirun({train(out, 320, 1), train(out, 320, 1, "--lr nan")})), 1);
  EXPECT_NE(stderr_text().find("vitqk: error: rank 1: --lr: 'nan': must be a positive number"), std::string::npos)
      << stderr_text();
  EXPECT_EQ(run(mpirun({train(out, 320, 1, "--bogus"), train(out, 320, 1)})), 1);
  EXPECT_NE(stderr_text().find("vitqk: error: rank 0: The following argument was not expected: --bogus"),
            std::string::npos)
      << stderr_text();
}

}  // namespace
}  // namespace vitqk
