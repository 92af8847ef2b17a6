// parallel_tasks: every task once, on one thread each (nested parallel work and oneDNN see a
// single thread), the caller's thread count untouched afterwards, and a task's error rethrown.
#include "core/threads.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <atomic>
#include <stdexcept>
#include <vector>

namespace vitqk {
namespace {

TEST(ParallelTasks, RunEachTaskOnceOnOneThread) {
  const int before = omp_get_max_threads();
  omp_set_num_threads(2);
  std::vector<std::atomic<int>> runs(37);
  std::atomic<int> wider{0}, bad_index{0};
  parallel_tasks(37, [&](int i, int thread) {
    ++runs[i];
    if (omp_get_max_threads() != 1) ++wider;
    if (thread < 0 || thread >= 2) ++bad_index;
    int inner = 0;
#pragma omp parallel reduction(+ : inner)
    inner += 1;
    if (inner != 1) ++wider;
  });
  for (int i = 0; i < 37; ++i) EXPECT_EQ(runs[i], 1) << i;
  EXPECT_EQ(wider, 0) << "a task saw more than one thread";
  EXPECT_EQ(bad_index, 0);
  EXPECT_EQ(omp_get_max_threads(), 2) << "the caller's thread count changed";
  omp_set_num_threads(before);
}

TEST(ParallelTasks, RethrowsATasksError) {
  std::atomic<int> ran{0};
  EXPECT_THROW(parallel_tasks(8,
                              [&](int i, int) {
                                ++ran;
                                if (i == 3) throw std::runtime_error("task 3");
                              }),
               std::runtime_error);
  EXPECT_EQ(ran, 8) << "the other tasks still run";
  parallel_tasks(0, [](int, int) { FAIL() << "no tasks, no calls"; });
}

}  // namespace
}  // namespace vitqk
