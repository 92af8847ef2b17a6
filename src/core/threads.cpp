#include "core/threads.h"

#include <cblas.h>
#include <omp.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>

namespace vitqk {

namespace {
// Whether other work already keeps this machine's cores busy: the one-minute load average is
// above the core count (one earlier vitqk run on every core cannot do that alone) and another
// task is runnable now, in each of three samples a millisecond apart (not a passing one).
bool machine_busy() {
  const long cores = sysconf(_SC_NPROCESSORS_ONLN);
  for (int i = 0; i < 3; ++i) {
    if (i) usleep(1000);
    std::FILE* f = std::fopen("/proc/loadavg", "r");
    if (!f) return false;
    double load1 = 0, load5, load15;
    int running = 0, total;
    const int got = std::fscanf(f, "%lf %lf %lf %d/%d", &load1, &load5, &load15, &running, &total);
    std::fclose(f);
    if (got != 5 || load1 < double(cores) + 0.5 || running < 2) return false;
  }
  return true;
}
}  // namespace

void choose_wait_policy(char** argv) {
  constexpr const char* marker = "VITQK_SET_OMP_WAIT_POLICY";
  if (std::getenv(marker)) {  // the re-executed run: libgomp has read the setting; processes
    unsetenv(marker);         // started from here (bench's peers) get the user's environment
    unsetenv("OMP_WAIT_POLICY");
    unsetenv("GOMP_SPINCOUNT");
    return;
  }
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) return;
  if (machine_busy()) setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
  else setenv("GOMP_SPINCOUNT", "10000", 1);
  setenv(marker, "1", 1);
  execv("/proc/self/exe", argv);  // returns only on failure: then run with libgomp's default
}

void set_threads(int n) {
  if (n <= 0) return;
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
}

int max_threads() { return omp_get_max_threads(); }

void parallel_tasks(int n, const std::function<void(int i, int thread)>& task) {
  std::exception_ptr error;
#pragma omp parallel
  {
    // This thread's own setting, for the rest of the region: the nested parallel regions and
    // oneDNN's kernels (which fix their work split by it) see one thread.
    omp_set_num_threads(1);
#pragma omp for schedule(dynamic, 1)
    for (int i = 0; i < n; ++i) {
      try {
        task(i, omp_get_thread_num());
      } catch (...) {
#pragma omp critical(vitqk_parallel_tasks)
        if (!error) error = std::current_exception();
      }
    }
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace vitqk
