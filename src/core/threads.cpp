#include "core/threads.h"

#include <cblas.h>
#include <omp.h>

namespace vitqk {

void set_threads(int n) {
  if (n <= 0) return;
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
}

int max_threads() { return omp_get_max_threads(); }

}  // namespace vitqk
