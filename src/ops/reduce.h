#pragma once
// Sums and maxima for the per-row and per-column statistics of the ops (LayerNorm, softmax and
// their gradients), in AVX-512 registers. The sums take `step` or `term` written once with
// `auto`: it is called with 16 columns at a time (__m512, whose arithmetic operators are plain
// float arithmetic per lane) or, without AVX-512, one float; at(p) reads the value(s) of the
// current column(s) from the row starting at p.
//
// column_sums: over rows in row order, for gradients of per-column parameters (biases,
// LayerNorm scales): out[j] = step(... step(step(out[j], 0, at), 1, at) ..., M - 1, at), the
// same order and bits whatever the threads. A block of up to 128 columns stays in registers
// over all rows; adding into `out` row by row waited on store-to-load forwarding, 3x slower
// (7.8 vs 2.7 us for the default training model's 400 x 192 bias gradient).
//
// row_max: the largest of a row's n values, NaNs skipped (the order does not matter for a
// maximum); `omp simd reduction(max)` took its lanes one at a time: 40% of a 50x50 softmax.
//
// row_sum: the sum of term(at) over one row's n columns, 16 lane sums then a tree across the
// lanes. `#pragma omp simd reduction(+)` ends with the 16 lanes added one by one from memory, a
// chain of 16 dependent adds per row: LayerNorm over rows of 64 spent most of its time there
// (forward 7.6 -> 4.4 us, backward's two sums 7.5 -> 3.5 us for 400 rows).
#include <algorithm>
#include <cmath>

#include "core/intrinsics.h"

namespace vitqk {

#ifdef __AVX512F__
namespace detail {
template <int V, class Step>
void column_block(float* out, int M, __mmask16 last, const Step& step) {
  __m512 acc[V];
#pragma GCC unroll 8
  for (int v = 0; v < V; ++v) acc[v] = _mm512_maskz_loadu_ps(v + 1 < V ? 0xFFFF : last, out + 16 * v);
  for (int i = 0; i < M; ++i)
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v)
      acc[v] = step(acc[v], i, [&](const float* row) {
        return _mm512_maskz_loadu_ps(v + 1 < V ? 0xFFFF : last, row + 16 * v);
      });
#pragma GCC unroll 8
  for (int v = 0; v < V; ++v) _mm512_mask_storeu_ps(out + 16 * v, v + 1 < V ? 0xFFFF : last, acc[v]);
}
}  // namespace detail
#endif

// Columns [0, N) of out in parallel (when called outside a parallel region), each over rows 0..M-1.
template <class Step>
void column_sums(float* out, int M, int N, const Step& step) {
  constexpr int kBlock = 128;
#pragma omp parallel for schedule(static)
  for (int j0 = 0; j0 < N; j0 += kBlock) {
#ifdef __AVX512F__
    const int cols = std::min(kBlock, N - j0), rem = cols % 16;
    const __mmask16 last = rem ? __mmask16((1u << rem) - 1) : __mmask16(0xFFFF);
    // Column j0 + c of row p is at(p)[c]: shift the rows, not the reader.
    auto shifted = [&](auto acc, int i, auto at) { return step(acc, i, [&](const float* row) { return at(row + j0); }); };
    switch ((cols + 15) / 16) {
      case 1: detail::column_block<1>(out + j0, M, last, shifted); break;
      case 2: detail::column_block<2>(out + j0, M, last, shifted); break;
      case 3: detail::column_block<3>(out + j0, M, last, shifted); break;
      case 4: detail::column_block<4>(out + j0, M, last, shifted); break;
      case 5: detail::column_block<5>(out + j0, M, last, shifted); break;
      case 6: detail::column_block<6>(out + j0, M, last, shifted); break;
      case 7: detail::column_block<7>(out + j0, M, last, shifted); break;
      default: detail::column_block<8>(out + j0, M, last, shifted); break;
    }
#else
    const int j1 = std::min(N, j0 + kBlock);
    for (int i = 0; i < M; ++i)
      for (int j = j0; j < j1; ++j) out[j] = step(out[j], i, [&](const float* row) { return row[j]; });
#endif
  }
}

inline float row_max(const float* r, int n) {
#ifdef __AVX512F__
  __m512 m = _mm512_set1_ps(-INFINITY);
  int j = 0;
  for (; j + 16 <= n; j += 16) m = _mm512_max_ps(_mm512_loadu_ps(r + j), m);  // a NaN yields m
  if (j < n) m = _mm512_max_ps(_mm512_mask_loadu_ps(m, __mmask16((1u << (n - j)) - 1), r + j), m);
  return _mm512_reduce_max_ps(m);
#else
  float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
  for (int j = 0; j < n; ++j) mx = r[j] > mx ? r[j] : mx;
  return mx;
#endif
}

template <class Term>
float row_sum(int n, const Term& term) {
#ifdef __AVX512F__
  __m512 acc = _mm512_setzero_ps();
  int j = 0;
  for (; j + 16 <= n; j += 16) acc += term([&](const float* row) { return _mm512_loadu_ps(row + j); });
  if (j < n) {
    const __mmask16 in = __mmask16((1u << (n - j)) - 1);
    // Masked lanes of the term may not be zero (a centred square of a zero is not): drop them.
    acc = _mm512_mask_add_ps(acc, in, acc, term([&](const float* row) { return _mm512_maskz_loadu_ps(in, row + j); }));
  }
  return _mm512_reduce_add_ps(acc);
#else
  float s = 0.0f;
  for (int j = 0; j < n; ++j) s += term([&](const float* row) { return row[j]; });
  return s;
#endif
}

}  // namespace vitqk
