#include "io/atomic_file.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>

#include "core/error.h"
#include "testing.h"

namespace vitqk::io {
namespace {

namespace fs = std::filesystem;

using testing::slurp;

void spit(const std::string& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

class AtomicFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "vitqk_atomic_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string at(const std::string& name) const { return dir_ + "/" + name; }
  std::string tmp_of(const std::string& path) const { return path + ".tmp." + std::to_string(::getpid()); }
  size_t files_in_dir() const { return size_t(std::distance(fs::directory_iterator(dir_), fs::directory_iterator())); }

  std::string dir_;
};

TEST_F(AtomicFileTest, WritesAndCommits) {
  const std::string path = at("out.txt");
  {
    AtomicFile f(path);
    f.write("hello ", 6);
    f.write("world", 5);
    EXPECT_FALSE(fs::exists(path)) << "target must not appear before commit";
    EXPECT_TRUE(fs::exists(tmp_of(path))) << "temporary is <path>.tmp.<pid> beside the target";
    f.commit();
  }
  EXPECT_EQ(slurp(path), "hello world");
  EXPECT_FALSE(fs::exists(tmp_of(path)));
  EXPECT_EQ(files_in_dir(), 1u);
}

TEST_F(AtomicFileTest, OverwriteKeepsOldFileUntilCommit) {
  const std::string path = at("out.txt");
  spit(path, "old contents");
  AtomicFile f(path);
  f.write("new", 3);
  EXPECT_EQ(slurp(path), "old contents");
  f.commit();
  EXPECT_EQ(slurp(path), "new");
  EXPECT_EQ(files_in_dir(), 1u);
}

TEST_F(AtomicFileTest, DestructorWithoutCommitRemovesTemporaryAndKeepsOldFile) {
  const std::string path = at("out.txt");
  spit(path, "old");
  {
    AtomicFile f(path);
    f.write("partial", 7);
  }
  EXPECT_EQ(slurp(path), "old");
  EXPECT_FALSE(fs::exists(tmp_of(path)));
  EXPECT_EQ(files_in_dir(), 1u);

  { AtomicFile f(at("never.txt")); }
  EXPECT_FALSE(fs::exists(at("never.txt")));
  EXPECT_EQ(files_in_dir(), 1u);
}

TEST_F(AtomicFileTest, MissingDirectoryFailsWithoutLeavingFiles) {
  const std::string path = at("no/such/dir/out.txt");
  try {
    write_file_atomic(path, "x");
    FAIL() << "expected vitqk::Error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << msg;
    EXPECT_NE(msg.find("No such file or directory"), std::string::npos) << msg;
  }
  EXPECT_EQ(files_in_dir(), 0u);
}

TEST_F(AtomicFileTest, ParentIsAFileFailsWithoutLeavingFiles) {
  // ENOTDIR fails even for root, unlike a read-only directory.
  spit(at("plain"), "I am a file");
  const std::string path = at("plain/out.txt");
  try {
    write_file_atomic(path, "x");
    FAIL() << "expected vitqk::Error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind(path + ": cannot create", 0), 0u) << e.what();
  }
  EXPECT_EQ(slurp(at("plain")), "I am a file");
  EXPECT_EQ(files_in_dir(), 1u);
}

TEST_F(AtomicFileTest, ReadOnlyDirectoryFails) {
  if (::geteuid() == 0) GTEST_SKIP() << "root writes into read-only directories";
  fs::create_directory(at("ro"));
  fs::permissions(at("ro"), fs::perms::owner_read | fs::perms::owner_exec);
  EXPECT_THROW(write_file_atomic(at("ro/out.txt"), "x"), Error);
  fs::permissions(at("ro"), fs::perms::owner_all);
  EXPECT_TRUE(fs::is_empty(at("ro")));
}

TEST_F(AtomicFileTest, ReplacesStaleTemporaryOfSamePid) {
  // A run killed before commit, whose pid this process now has, left its temporary behind.
  const std::string path = at("out.txt");
  spit(tmp_of(path), "stale garbage");
  write_file_atomic(path, "fresh");
  EXPECT_EQ(slurp(path), "fresh");
  EXPECT_EQ(files_in_dir(), 1u);
}

TEST_F(AtomicFileTest, CommitTwiceAndWriteAfterCommitThrow) {
  const std::string path = at("out.txt");
  AtomicFile f(path);
  f.write("a", 1);
  f.commit();
  try {
    f.commit();
    ADD_FAILURE() << "second commit accepted";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), path + ": commit called twice");
  }
  try {
    f.write("b", 1);
    ADD_FAILURE() << "write after commit accepted";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), path + ": write after commit");
  }
  EXPECT_EQ(slurp(path), "a");
}

TEST_F(AtomicFileTest, CommittedWriterLeavesTheNextWritersTemporaryAlone) {
  // Same process, same target, so the same temporary name: the first writer, committed,
  // must not remove the second's temporary when it goes out of scope.
  const std::string path = at("out.txt");
  auto first = std::make_unique<AtomicFile>(path);
  first->write("1", 1);
  first->commit();
  AtomicFile second(path);
  second.write("2", 1);
  first.reset();
  second.commit();
  EXPECT_EQ(slurp(path), "2");
}

TEST_F(AtomicFileTest, WriteFileAtomicRoundTripsBinaryAndEmpty) {
  const std::string bytes("a\0b\nc\xff", 6);
  write_file_atomic(at("bin"), bytes);
  EXPECT_EQ(slurp(at("bin")), bytes);
  write_file_atomic(at("empty"), "");
  EXPECT_TRUE(fs::exists(at("empty")));
  EXPECT_EQ(fs::file_size(at("empty")), 0u);
}

// A bare file name has no parent directory in its path: the directory to sync is ".".
TEST_F(AtomicFileTest, BareFileNameCommitsInCurrentDirectory) {
  // In a child, so the change of directory does not leak into other tests.
  EXPECT_EXIT((void(::chdir(dir_.c_str())), write_file_atomic("bare.txt", "x"), std::_Exit(0)),
              ::testing::ExitedWithCode(0), "");
  EXPECT_EQ(slurp(at("bare.txt")), "x");
}

TEST_F(AtomicFileTest, LargeWriteIsComplete) {
  std::string big(3 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = char(i * 2654435761u >> 13);
  write_file_atomic(at("big"), big);
  EXPECT_EQ(slurp(at("big")), big);
}

// A full disk cannot be staged portably; a file-size limit makes write() fail the same
// way part-way through (a short write, then an error), which is the path ENOSPC takes.
// Runs in a child process (the limit and the ignored signal must not outlive it); the exit
// code says what went wrong.
[[noreturn]] void write_beyond_size_limit(const std::string& path) {
  std::signal(SIGXFSZ, SIG_IGN);
  const rlimit lim{1000, 1000};
  ::setrlimit(RLIMIT_FSIZE, &lim);
  int code = 0;
  try {
    write_file_atomic(path, std::string(5000, 'x'));
    code = 2;
  } catch (const Error& e) {
    if (std::string(e.what()) != path + ": write failed: File too large") code = 3;
  }
  if (slurp(path) != "old" || fs::exists(path + ".tmp." + std::to_string(::getpid()))) code = 4;
  std::_Exit(code);
}

TEST_F(AtomicFileTest, FailedWriteNamesTargetRemovesTemporaryKeepsOldFile) {
  const std::string path = at("out.txt");
  spit(path, "old");
  EXPECT_EXIT(write_beyond_size_limit(path), ::testing::ExitedWithCode(0), "");
  EXPECT_EQ(slurp(path), "old");
  EXPECT_EQ(files_in_dir(), 1u);
}


TEST_F(AtomicFileTest, NonRegularTargetIsRefusedNotReplaced) {
  // As root, renaming over /dev/null would replace the device node with a plain file.
  for (const std::string& target : {std::string("/dev/null"), dir_}) {
    try {
      AtomicFile f(target);
      ADD_FAILURE() << target << " was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()).rfind(target + ": not a regular file", 0), 0u) << e.what();
    }
  }
  struct stat st {};
  ASSERT_EQ(::stat("/dev/null", &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(files_in_dir(), 0u);
}

TEST_F(AtomicFileTest, SymlinkIsFollowedAndKept) {
  const std::string real = at("real.txt"), link = at("link.txt");
  spit(real, "old");
  fs::create_symlink(real, link);
  write_file_atomic(link, "new");
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_EQ(slurp(real), "new");
  EXPECT_EQ(files_in_dir(), 2u);
  // A link to a file not made yet makes it, relative to the link's folder.
  const std::string later = at("later.txt"), link2 = at("link2.txt");
  fs::create_symlink("later.txt", link2);
  write_file_atomic(link2, "made");
  EXPECT_TRUE(fs::is_symlink(link2));
  EXPECT_EQ(slurp(later), "made");
}

// A child writes part of a file and is killed by SIGTERM, as Ctrl-C or `kill` would end
// `vitqk merge` half way through a large write: the temporary must go with it.
TEST_F(AtomicFileTest, SignalThatEndsTheProcessRemovesTheTemporary) {
  const std::string path = at("out.bin");
  spit(path, "old");
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    AtomicFile f(path);
    f.write("partial", 7);
    ::raise(SIGTERM);
    std::_Exit(3);  // not reached
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM) << "status " << status;
  EXPECT_EQ(slurp(path), "old");
  EXPECT_EQ(files_in_dir(), 1u);
}

}  // namespace
}  // namespace vitqk::io
