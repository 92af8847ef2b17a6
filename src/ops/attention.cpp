#include "ops/attention.h"

#include <cmath>

#include "core/gemm.h"
#include "ops/softmax.h"

namespace vitqk {

float AttentionDims::scale() const { return qk == Form::Merged ? 1.0f : 1.0f / std::sqrt(float(dh())); }

HeadViews head_views(const AttentionDims& d, int b, int h) {
  const int R = d.in_rows();
  const long prow = (long)b * d.n * R, xrow = (long)b * d.n * d.D;
  HeadViews v{};
  v.ldq = R;
  v.q = prow + (long)h * d.q_width();
  v.k_from_x = d.qk == Form::Merged;
  v.k = v.k_from_x ? xrow : prow + d.D + (long)h * d.dh();
  v.ldk = v.k_from_x ? d.D : R;
  v.v_from_x = d.ov == Form::Merged;
  v.v = v.v_from_x ? xrow : prow + d.qk_rows() + (long)h * d.dh();
  v.ldv = v.v_from_x ? d.D : R;
  v.ldo = d.out_cols();
  v.o = (long)b * d.n * v.ldo + (long)h * d.v_width();
  return v;
}

void attention_forward(const AttentionDims& d, const float* P, const float* x, float* att, float* out) {
  const int n = d.n;
  // Heads are independent: one (image, head) pair per task, single-threaded GEMMs inside.
#pragma omp parallel for schedule(dynamic)
  for (int bh = 0; bh < d.B * d.H; ++bh) {
    const int b = bh / d.H, h = bh % d.H;
    const HeadViews v = head_views(d, b, h);
    float* A = att + (long)bh * n * n;
    gemm(false, true, n, n, d.q_width(), d.scale(), P + v.q, v.ldq, (v.k_from_x ? x : P) + v.k, v.ldk, 0.0f, A,
         n);
    softmax_rows(A, n, n);
    gemm(false, false, n, d.v_width(), n, 1.0f, A, n, (v.v_from_x ? x : P) + v.v, v.ldv, 0.0f, out + v.o, v.ldo);
  }
}

}  // namespace vitqk
