#pragma once
namespace vitqk {
// One threading model: OpenMP, shared with OpenBLAS's OpenMP build. 0 keeps the default
// (all cores, or OMP_NUM_THREADS).
void set_threads(int n);
int max_threads();

// Elementwise work below this many values runs on one thread: waking another costs more than
// it saves (a ViT-Ti LayerNorm of 197 x 192 values takes ~10 us).
constexpr long kParallelMin = 1 << 16;

// OpenMP threads that finish early spin-wait for the others by default. On a machine shared
// with other work (two cores and a compiler, say) a spinning thread burns the time slice its
// partner needs and every parallel region costs a scheduler round: a ViT-Ti forward pass ran
// 4x slower on two threads than on one. Waiting threads should sleep instead. libgomp reads
// its settings when it loads, before main(), so this re-executes the program (argv as given
// to main) once with OMP_WAIT_POLICY=PASSIVE, unless the user set it or GOMP_SPINCOUNT.
void sleep_when_idle(char** argv);
}  // namespace vitqk
