// The single-process side of src/dist: what every run without mpirun goes through, and how
// a process tells whether a launcher started it.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "dist/comm.h"
#include "dist/session.h"

namespace vitqk::dist {
namespace {

class Env {  // sets (or unsets) variables for one test and restores them after
 public:
  void set(const char* name, const char* value) {
    const char* old = std::getenv(name);
    saved_.push_back({name, old ? std::string(old) : std::string(), old != nullptr});
    value ? setenv(name, value, 1) : unsetenv(name);
  }
  ~Env() {
    for (auto it = saved_.rbegin(); it != saved_.rend(); ++it)
      it->had ? setenv(it->name.c_str(), it->value.c_str(), 1) : unsetenv(it->name.c_str());
  }

 private:
  struct Saved {
    std::string name, value;
    bool had;
  };
  std::vector<Saved> saved_;
};

TEST(Launcher, DetectedFromTheEnvironment) {
  Env env;
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE"}) env.set(v, nullptr);
  EXPECT_EQ(detect_launcher(), Launcher::None);
  env.set("PMI_SIZE", "1");  // a one-process PMI job is just one process
  EXPECT_EQ(detect_launcher(), Launcher::None);
  env.set("OMPI_COMM_WORLD_SIZE", "2");
  EXPECT_EQ(detect_launcher(), Launcher::OpenMpi);
  env.set("OMPI_COMM_WORLD_SIZE", nullptr);
  env.set("PMIX_RANK", "0");
  EXPECT_EQ(detect_launcher(), Launcher::OpenMpi);
}

TEST(Launcher, ForeignMpiLauncherIsRefused) {
  Env env;
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK"}) env.set(v, nullptr);
  env.set("PMI_SIZE", "4");
  try {
    detect_launcher();
    FAIL() << "an MPICH launcher would have started 4 unrelated trainings";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("OpenMPI's mpirun"), std::string::npos) << e.what();
  }
}

TEST(SingleProcess, IsTheWorldWithoutMpirunAndKeepsErrorsAsTheyAre) {
  const Comm& c = world();
  EXPECT_EQ(&c, &single_process());
  EXPECT_EQ(c.size(), 1);
  EXPECT_EQ(c.rank(), 0);
  float v[2] = {1.5f, -2.0f};
  c.allreduce_sum(v, 2);
  EXPECT_EQ(v[0], 1.5f);
  EXPECT_NO_THROW(agree(c, ""));
  try {
    collectively(c, [] { fail("data.bin: truncated"); });
    FAIL() << "the error was lost";
  } catch (const AgreedError& e) {
    EXPECT_STREQ(e.what(), "data.bin: truncated");  // no rank prefix on one process
  }
  EXPECT_NO_THROW(require_same(c, {{"seed", 1}}, ""));
  EXPECT_EQ(broadcast_json(c, {{"a", 1}}), nlohmann::json({{"a", 1}}));
}

TEST(Checksum, IsCrc32) {
  const std::string s = "123456789";
  EXPECT_EQ(checksum(s.data(), s.size()), 0xCBF43926u);  // the standard CRC-32 check value
}

}  // namespace
}  // namespace vitqk::dist
