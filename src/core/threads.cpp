#include "core/threads.h"

#include <cblas.h>
#include <omp.h>

#include <cstdlib>

namespace vitqk {

namespace {

// OpenMP threads that finish early spin-wait for the others by default. On a machine shared
// with other work (two cores and a compiler, say) a spinning thread burns the time slice
// its partner needs, and every parallel region then costs a scheduler round: a ViT-Ti forward
// pass measured 5x slower than with one thread. Waiting threads should sleep instead.
// libgomp reads its settings while it loads, before main() and before any library's own
// initialisers, which is when .preinit_array entries run. The user's own setting wins.
void default_wait_policy(int, char**, char**) {
  if (!std::getenv("OMP_WAIT_POLICY") && !std::getenv("GOMP_SPINCOUNT")) setenv("OMP_WAIT_POLICY", "PASSIVE", 0);
}
[[gnu::section(".preinit_array"), gnu::used]] void (*const wait_policy_hook)(int, char**, char**) =
    default_wait_policy;

}  // namespace

void set_threads(int n) {
  if (n <= 0) return;
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
}

int max_threads() { return omp_get_max_threads(); }

}  // namespace vitqk
