#include "core/threads.h"

#include <cblas.h>
#include <omp.h>
#include <unistd.h>

#include <cstdlib>

namespace vitqk {

void sleep_when_idle(char** argv) {
  constexpr const char* marker = "VITQK_SET_OMP_WAIT_POLICY";
  if (std::getenv(marker)) {  // the re-executed run: libgomp has read the setting; processes
    unsetenv(marker);         // started from here (bench's peers) get the user's environment
    unsetenv("OMP_WAIT_POLICY");
    return;
  }
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) return;
  setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
  setenv(marker, "1", 1);
  execv("/proc/self/exe", argv);  // returns only on failure: then run with libgomp's default
}

void set_threads(int n) {
  if (n <= 0) return;
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
}

int max_threads() { return omp_get_max_threads(); }

}  // namespace vitqk
