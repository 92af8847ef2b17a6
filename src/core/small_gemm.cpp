#include "core/small_gemm.h"

#include <algorithm>
#include <array>
#include <utility>
#include <vector>

#include "core/intrinsics.h"
#include "core/peak.h"

namespace vitqk {

namespace {

constexpr int kMaxDim = 1024;

// One register tile: MR rows of C by NV vectors of 16 columns, the last vector masked.
// A is read by broadcasts, so op(A)(i, k) = a[i * sa + k * sk] serves both layouts at no
// cost; B rows are contiguous (a transposed B has been copied into rows).
struct Tile {
  const float* a;
  long sa, sk;
  const float* b;
  long ldb;
  float* c;
  long ldc;
  int K;
  __mmask16 last;
  float alpha, beta;
  bool chain;  // accumulators start from C and are stored as they end (alpha = beta = 1)
};

// A tile's last column of 16 is masked, and when it holds at most 8 columns (50 = 3 x 16 + 2:
// attention's scores in the default model) it is a 256-bit vector: Zen 4 runs two 256-bit
// FMAs in the time of one 512-bit FMA, so those 2 columns cost half as much (Zen 5 runs both
// widths at one rate). BM_HeadGemm on Zen 4: the 50 x 50 x 16 scores 1.2x faster, merged
// 50 x 50 x 64 1.17x.
template <bool Half>
struct LastColumn;
template <>
struct LastColumn<false> {
  using V = __m512;
  __attribute__((target("avx512f"))) static V zero() { return _mm512_setzero_ps(); }
  __attribute__((target("avx512f"))) static V load(__mmask16 m, const float* p) { return _mm512_maskz_loadu_ps(m, p); }
  __attribute__((target("avx512f"))) static V fma(__m512 a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  __attribute__((target("avx512f"))) static V mul(__m512 a, V b) { return _mm512_mul_ps(a, b); }
  __attribute__((target("avx512f"))) static void store(float* p, __mmask16 m, V y) { _mm512_mask_storeu_ps(p, m, y); }
};
template <>
struct LastColumn<true> {
  using V = __m256;
  __attribute__((target("avx512f,avx512vl"))) static V zero() { return _mm256_setzero_ps(); }
  __attribute__((target("avx512f,avx512vl"))) static V load(__mmask16 m, const float* p) {
    return _mm256_maskz_loadu_ps(__mmask8(m), p);
  }
  __attribute__((target("avx512f,avx512vl"))) static V fma(__m512 a, V b, V c) {
    return _mm256_fmadd_ps(_mm512_castps512_ps256(a), b, c);
  }
  __attribute__((target("avx512f,avx512vl"))) static V mul(__m512 a, V b) {
    return _mm256_mul_ps(_mm512_castps512_ps256(a), b);
  }
  __attribute__((target("avx512f,avx512vl"))) static void store(float* p, __mmask16 m, V y) {
    _mm256_mask_storeu_ps(p, __mmask8(m), y);
  }
};

// MR rows by NF full vectors of 16 columns and one last, masked, column (LastColumn<Half>).
template <int MR, int NF, bool Half>
__attribute__((target("avx512f,avx512vl"))) void tile(const Tile& t) {
  using L = LastColumn<Half>;
  // Locals, and every loop over the tile unrolled: else GCC 12 keeps the accumulators in
  // memory too, storing all of them on every step of k.
  const long sa = t.sa, sk = t.sk, ldb = t.ldb, ldc = t.ldc;
  const int K = t.K;
  const __mmask16 last = t.last;
  const bool chain = t.chain;
  constexpr int kFull = NF > 0 ? NF : 1;  // arrays of at least one (unused when NF = 0)
  __m512 acc[MR][kFull];
  typename L::V acc_last[MR];
#pragma GCC unroll 12
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 4
    for (int v = 0; v < NF; ++v) acc[r][v] = chain ? _mm512_loadu_ps(t.c + r * ldc + 16 * v) : _mm512_setzero_ps();
    acc_last[r] = chain ? L::load(last, t.c + r * ldc + 16 * NF) : L::zero();
  }
  const float* a = t.a;
  const float* b = t.b;
  for (int k = 0; k < K; ++k, a += sk, b += ldb) {
    __m512 bv[kFull];
#pragma GCC unroll 4
    for (int v = 0; v < NF; ++v) bv[v] = _mm512_loadu_ps(b + 16 * v);
    const typename L::V b_last = L::load(last, b + 16 * NF);
#pragma GCC unroll 12
    for (int r = 0; r < MR; ++r) {
      const __m512 ar = _mm512_set1_ps(a[r * sa]);
#pragma GCC unroll 4
      for (int v = 0; v < NF; ++v) acc[r][v] = _mm512_fmadd_ps(ar, bv[v], acc[r][v]);
      acc_last[r] = L::fma(ar, b_last, acc_last[r]);
    }
  }
  const __m512 alpha = _mm512_set1_ps(t.alpha), beta = _mm512_set1_ps(t.beta);
  const bool accumulate = t.beta != 0.0f && !chain;
#pragma GCC unroll 12
  for (int r = 0; r < MR; ++r) {
    float* c = t.c + r * ldc;
#pragma GCC unroll 4
    for (int v = 0; v < NF; ++v) {
      __m512 y = chain ? acc[r][v] : _mm512_mul_ps(alpha, acc[r][v]);
      if (accumulate) y = _mm512_fmadd_ps(beta, _mm512_loadu_ps(c + 16 * v), y);
      _mm512_storeu_ps(c + 16 * v, y);
    }
    typename L::V y = chain ? acc_last[r] : L::mul(alpha, acc_last[r]);
    if (accumulate) y = L::fma(beta, L::load(last, c + 16 * NF), y);
    L::store(c + 16 * NF, last, y);
  }
}

// rows[k][j] = B[j][k] for j < nj, k < nk (both at most 16): 16 rows loaded, transposed in
// registers (the usual unpack / shuffle / lane-shuffle network), nk rows of 16 stored. A
// scalar copy cost as much as the product it feeds for attention's 16-wide heads.
__attribute__((target("avx512f"))) void transpose16(const float* B, long ldb, int nj, int nk, float* rows, long ld) {
  const __mmask16 km = __mmask16((1u << nk) - 1);
  __m512 r[16], t[16];
  for (int j = 0; j < 16; ++j) r[j] = j < nj ? _mm512_maskz_loadu_ps(km, B + j * ldb) : _mm512_setzero_ps();
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int h = 0; h < 16; h += 8)
    for (int i = 0; i < 4; ++i) {
      t[h + i] = _mm512_shuffle_f32x4(r[h + i], r[h + i + 4], 0x88);
      t[h + i + 4] = _mm512_shuffle_f32x4(r[h + i], r[h + i + 4], 0xdd);
    }
  for (int i = 0; i < 8; ++i) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
  }
  for (int k = 0; k < nk; ++k) _mm512_storeu_ps(rows + k * ld, r[k]);
}

// Rows per tile for NV vectors: as many accumulators as leave registers for B and a
// broadcast, and for one vector enough rows that loads of B are few beside the FMAs.
constexpr int rows_for(int nv) { return nv == 1 ? 12 : nv == 4 ? 6 : 8; }

using TileFn = void (*)(const Tile&);

template <int NV, bool Half, size_t... R>
constexpr std::array<TileFn, sizeof...(R)> tiles_of(std::index_sequence<R...>) {
  return {tile<int(R) + 1, NV - 1, Half>...};
}

template <int NV, bool Half>
constexpr auto kTiles = tiles_of<NV, Half>(std::make_index_sequence<rows_for(NV)>());

// The tile of NV vectors (the last holding `rem` columns) and `rows` rows, 1 <= rows <= rows_for(NV).
TileFn tile_for(int nv, int rem, int rows) {
  const size_t i = size_t(rows - 1);
  const bool half = rem <= 8;
  switch (nv) {
    case 1: return half ? kTiles<1, true>[i] : kTiles<1, false>[i];
    case 2: return half ? kTiles<2, true>[i] : kTiles<2, false>[i];
    case 3: return half ? kTiles<3, true>[i] : kTiles<3, false>[i];
    default: return half ? kTiles<4, true>[i] : kTiles<4, false>[i];
  }
}

bool run(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, int lda, const float* B, int ldb,
         float beta, float* C, int ldc, bool chain) {
  static const bool avx512 = cpu_info().avx512f && cpu_info().avx512vl;  // VL: the half-width column
  if (!avx512 || N > kMaxDim || K > kMaxDim || M <= 0 || N <= 0 || K <= 0) return false;
  long ldbr = ldb;
  if (trans_b) {  // B is [N, K]: copy it to rows of op(B) = [K, N]
    static thread_local std::vector<float> rows;
    ldbr = (N + 15) / 16 * 16;
    rows.resize(size_t(K) * size_t(ldbr));
    for (int j = 0; j < N; j += 16)
      for (int k = 0; k < K; k += 16)
        transpose16(B + long(j) * ldb + k, ldb, std::min(16, N - j), std::min(16, K - k),
                    &rows[size_t(k) * size_t(ldbr) + size_t(j)], ldbr);
    B = rows.data();
  }
  const long sa = trans_a ? 1 : lda, sk = trans_a ? lda : 1;
  for (int j0 = 0; j0 < N; j0 += 64) {
    const int cols = std::min(64, N - j0), nv = (cols + 15) / 16;
    const int rem = cols - 16 * (nv - 1);
    const __mmask16 last = __mmask16((1u << rem) - 1);
    // As few tiles as the tallest allows, of heights differing by at most one: 50 rows are
    // 5 tiles of 10, not 4 of 12 and 1 of 2 (whose 2 accumulators wait on FMA latency).
    const int tiles = (M + rows_for(nv) - 1) / rows_for(nv), base = M / tiles, taller = M % tiles;
    for (int i = 0, i0 = 0; i < tiles; ++i) {
      const int rows = base + (i < taller);
      const Tile t{A + i0 * sa, sa, sk, B + j0, ldbr, C + long(i0) * ldc + j0, ldc, K, last, alpha, beta, chain};
      tile_for(nv, rem, rows)(t);
      i0 += rows;
    }
  }
  return true;
}
}  // namespace

bool small_gemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float* A, int lda,
                const float* B, int ldb, float beta, float* C, int ldc) {
  return run(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, false);
}

bool small_gemm_chain(bool trans_a, bool trans_b, int M, int N, int K, const float* A, int lda, const float* B,
                      int ldb, float* C, int ldc) {
  return run(trans_a, trans_b, M, N, K, 1.0f, A, lda, B, ldb, 1.0f, C, ldc, true);
}

}  // namespace vitqk
