#include "ops/attention.h"

#include <omp.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/gemm.h"
#include "ops/reduce.h"
#include "ops/softmax.h"

namespace vitqk {

namespace {
// An aggregate initialiser without `queries` leaves 0, which would silently compute nothing.
void check_queries(const AttentionDims& d) {
  if (d.queries < 1 || d.queries > d.n) fail("internal error: ", d.queries, " query rows of ", d.n, " tokens");
}
}  // namespace

float AttentionDims::scale() const { return qk == Form::Merged ? 1.0f : 1.0f / std::sqrt(float(dh())); }

HeadViews head_views(const AttentionDims& d, int b, int h) {
  const int R = d.in_rows(), qc = d.q_cols();
  const long xrow = (long)b * d.n * d.D;
  // P's rows hold queries, then keys and values; with fewer queries than tokens they are two
  // blocks instead, [B * queries, q_cols] then [B * n, R - q_cols].
  const bool apart = d.queries < d.n;
  const long q_row = (long)b * d.queries * (apart ? qc : R);
  const long kv_row = apart ? (long)d.B * d.queries * qc + (long)b * d.n * (R - qc) : (long)b * d.n * R + qc;
  const int ldkv = apart ? R - qc : R;
  HeadViews v{};
  v.ldq = apart ? qc : R;
  v.q = q_row + (long)h * d.q_width();
  v.k_from_x = d.qk == Form::Merged;
  v.k = v.k_from_x ? xrow : kv_row + (long)h * d.dh();
  v.ldk = v.k_from_x ? d.D : ldkv;
  v.v_from_x = d.ov == Form::Merged;
  v.v = v.v_from_x ? xrow : kv_row + (d.qk_rows() - qc) + (long)h * d.dh();
  v.ldv = v.v_from_x ? d.D : ldkv;
  v.ldo = d.out_cols();
  v.o = (long)b * d.queries * v.ldo + (long)h * d.v_width();
  return v;
}

void attention_forward(const AttentionDims& d, const float* P, const float* x, float* att, float* out) {
  check_queries(d);
  const int n = d.n;
  // Tasks are blocks of query rows of one (image, head): rows are independent (each needs
  // every key and value), and with few heads (ViT-Ti has 3) whole heads would leave a thread
  // idle. Enough blocks for four tasks per thread, and a multiple of the thread count where
  // blocks of 32 rows allow it (ViT-Ti: 12 blocks of ~50 rows, not 9 of 66 of which one thread
  // ran 5: 1% of its forward pass); single-threaded GEMMs inside.
  const int heads = d.B * d.H, threads = omp_get_max_threads(), most = (d.queries + 31) / 32;
  int per_head = std::clamp((4 * threads + heads - 1) / heads, 1, most);
  while (heads * per_head % threads != 0 && per_head < most) ++per_head;
  const int block = (d.queries + per_head - 1) / per_head;
#pragma omp parallel for schedule(dynamic)
  for (int t = 0; t < heads * per_head; ++t) {
    const int bh = t / per_head, r0 = (t % per_head) * block, rows = std::min(block, d.queries - r0);
    if (rows <= 0) continue;
    const HeadViews v = head_views(d, bh / d.H, bh % d.H);
    float* A = att + (long)bh * n * n + (long)r0 * n;
    gemm(false, true, rows, n, d.q_width(), d.scale(), P + v.q + (long)r0 * v.ldq, v.ldq,
         (v.k_from_x ? x : P) + v.k, v.ldk, 0.0f, A, n);
    softmax_rows(A, rows, n);
    gemm(false, false, rows, d.v_width(), n, 1.0f, A, n, (v.v_from_x ? x : P) + v.v, v.ldv, 0.0f,
         out + v.o + (long)r0 * v.ldo, v.ldo);
  }
}

void attention_backward(const AttentionDims& d, const float* P, const float* x, const float* att, const float* dout,
                        float* dP, float* dx, float* scratch) {
  check_queries(d);
  const int n = d.n, qn = d.queries;
#pragma omp parallel for schedule(static)
  for (int b = 0; b < d.B; ++b) {
    float* dA = scratch + (long)omp_get_thread_num() * n * n;
    for (int h = 0; h < d.H; ++h) {
      const HeadViews v = head_views(d, b, h);
      const float* A = att + ((long)b * d.H + h) * n * n;
      const float* dO = dout + v.o;
      const float* V = (v.v_from_x ? x : P) + v.v;
      const float* K = (v.k_from_x ? x : P) + v.k;
      const float* Q = P + v.q;
      // Shared keys/values (merged) accumulate over heads into dx; a head's own slice of P is
      // written once.
      float* dV = (v.v_from_x ? dx : dP) + v.v;
      float* dK = (v.k_from_x ? dx : dP) + v.k;

      gemm(false, true, qn, n, d.v_width(), 1.0f, dO, v.ldo, V, v.ldv, 0.0f, dA, n);
      gemm(true, false, n, d.v_width(), qn, 1.0f, A, n, dO, v.ldo, v.v_from_x ? 1.0f : 0.0f, dV, v.ldv);
      // Softmax backward: dS = A * (dA - sum_j dA_j A_j), row by row.
      for (int i = 0; i < qn; ++i) {
        float* g = dA + (long)i * n;
        const float* a = A + (long)i * n;
        const float dot = row_sum(n, [&](auto at) { return at(g) * at(a); });
#pragma omp simd
        for (int j = 0; j < n; ++j) g[j] = a[j] * (g[j] - dot);
      }
      gemm(false, false, qn, d.q_width(), n, d.scale(), dA, n, K, v.ldk, 0.0f, dP + v.q, v.ldq);
      gemm(true, false, n, d.q_width(), qn, d.scale(), dA, n, Q, v.ldq, v.k_from_x ? 1.0f : 0.0f, dK, v.ldk);
    }
  }
}

}  // namespace vitqk
