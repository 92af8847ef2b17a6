#pragma once
// Multi-head self-attention core for both forms of each pair (README, "The math in one screen").
//
// Input: P = x W_in^T + b_in, one row of R values per token, and x itself (the normed
// tokens). Per head h, with scores S_h = scale * Q_h K_h^T, A_h = softmax(S_h), and the head
// output O_h = A_h V_h written side by side into `out` (row width out_cols):
//
//              factorized                     merged
//   Q_h   P[:, h*dh : (h+1)*dh]         P[:, h*D : (h+1)*D]   (p = x A_h + u_h)
//   K_h   P[:, D + h*dh : ...]          x                     (shared by every head)
//   scale 1/sqrt(dh)                    1 (folded into A_h)
//   V_h   P[:, qk_rows + h*dh : ...]    x                     (shared by every head)
//   O_h   out[:, h*dh : ...], width D   out[:, h*D : ...], width H*D
//
// The output projection that follows is W_O [D, D] (factorized) or the per-head products
// W_O^h W_V^h side by side, [D, H*D] (merged): one GEMM either way.
#include "model/config.h"

namespace vitqk {

struct AttentionDims {
  int B, n, D, H;
  Form qk, ov;
  // Query rows per image, the leading ones: n, or 1 where only the class token's output is
  // wanted (the last block). Keys and values always cover all n tokens.
  int queries;

  int dh() const { return D / H; }
  int qk_rows() const { return qk == Form::Merged ? H * D : 2 * D; }
  int in_rows() const { return qk_rows() + (ov == Form::Merged ? 0 : D); }
  int out_cols() const { return ov == Form::Merged ? H * D : D; }
  int q_width() const { return qk == Form::Merged ? D : dh(); }
  int q_cols() const { return H * q_width(); }  // the queries lead each row of P
  int v_width() const { return ov == Form::Merged ? D : dh(); }
  float scale() const;
};

// One head's operands inside one image of the batch; shared by forward and backward so the
// two can never disagree about the layout.
struct HeadViews {
  long q, k, v, o;  // offsets into P (q; k and v unless shared), x (shared k/v), out
  int ldq, ldk, ldv, ldo;
  bool k_from_x, v_from_x;
};
HeadViews head_views(const AttentionDims& d, int b, int h);

// att: [B, H, n, n] softmax probabilities (kept for backward; rows past `queries` untouched);
// out: [B*queries, out_cols]. With queries < n, P is [B*queries, q_cols] (the queries) followed
// by [B*n, in_rows - q_cols] (every token's keys and values).
void attention_forward(const AttentionDims& d, const float* P, const float* x, float* att, float* out);

// Backward of attention_forward. dout: gradient of `out`. Overwrites dP (laid out as P) and
// adds into dx [B*n, D] the gradient that reaches x through merged keys/values (shared by
// all heads). scratch: n*n floats per OpenMP thread. Parallel over images, heads in order,
// so the bits do not depend on the thread count.
void attention_backward(const AttentionDims& d, const float* P, const float* x, const float* att, const float* dout,
                        float* dP, float* dx, float* scratch);

}  // namespace vitqk
