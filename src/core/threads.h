#pragma once
#include <functional>

namespace vitqk {
// One threading model: OpenMP, shared with OpenBLAS's OpenMP build. 0 keeps the default
// (all cores, or OMP_NUM_THREADS).
void set_threads(int n);
int max_threads();

// Runs task(i, thread) for every i in [0, n), spread over the threads, each call on a single
// thread: the parallel work inside it (oneDNN, the ops) stays on that thread. Results then
// depend on how the work is cut into tasks, never on the thread count. `thread` indexes
// per-thread buffers (< max_threads()). The first exception a task throws is rethrown.
void parallel_tasks(int n, const std::function<void(int i, int thread)>& task);

// Elementwise work below this many values runs on one thread: waking another costs more than
// it saves (a ViT-Ti LayerNorm of 197 x 192 values takes ~10 us).
constexpr long kParallelMin = 1 << 16;

// How OpenMP threads wait at the end of a parallel region. libgomp's default spins for ~3 ms,
// then sleeps. On a quiet machine a short spin is what small models need: a sleeping thread
// takes tens of microseconds to wake, and the default Fashion-MNIST model's forward pass (about
// fifty parallel regions) ran 8x slower with sleeping threads (1.4 vs 0.17 ms). On a machine
// already busy with other work, any spin burns the time slice a partner thread needs: two
// 2-thread ViT-Ti runs side by side took 13 ms each with sleeping threads, 44 ms with a
// 0.1 ms spin. So: sleep (OMP_WAIT_POLICY=PASSIVE) if other work already loads every core when
// vitqk starts, otherwise a short spin (GOMP_SPINCOUNT=10000). libgomp reads its settings when
// it loads, before main(), so this re-executes the program (argv as given to main) once with
// the setting, unless the user set OMP_WAIT_POLICY or GOMP_SPINCOUNT.
void choose_wait_policy(char** argv);
}  // namespace vitqk
