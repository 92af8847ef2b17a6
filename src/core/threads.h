#pragma once
namespace vitqk {
// One threading model: OpenMP, shared with OpenBLAS's OpenMP build. 0 keeps the default
// (all cores, or OMP_NUM_THREADS).
void set_threads(int n);
int max_threads();
}  // namespace vitqk
