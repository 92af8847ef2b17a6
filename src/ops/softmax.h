#pragma once
namespace vitqk {
// Row-wise softmax in place over `cols` entries of each of `rows` rows (row stride `cols`),
// max-subtracted. Single-threaded: callers parallelise over heads.
void softmax_rows(float* x, int rows, int cols);
}  // namespace vitqk
