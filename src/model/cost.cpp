#include "model/cost.h"

namespace vitqk {

namespace {
constexpr int64_t F = sizeof(float);
}

Cost LayerCost::total() const {
  Cost c = qk;
  c += ov, c += mlp, c += norms;
  return c;
}

Cost ModelCost::total() const {
  Cost c = embed;
  for (const auto& l : layers) c += l.total();
  c += head;
  return c;
}

namespace {

// The pairs of a layer whose first q of n tokens are queries (q = n, but 1 in the last block
// as vitqk computes it). Every token is a key and a value; query projections, scores, weighted values
// and the output projection are per query.
Cost qk_cost(int64_t D, int64_t H, int64_t n, int64_t q, Form f) {
  // Factorized: q and k projections (2 D^2 + 2 D), scores q_h . k_h over all heads (n^2 D).
  // Merged: p_h = x A_h + u_h for every head (H (D^2 + D)), scores p_h . x_j (H n^2 D).
  // Scores and softmax probabilities ([H, n, n]) are kept either way.
  const int64_t q_rows = f == Form::Merged ? H * D : D, k_rows = f == Form::Merged ? 0 : D, rows = q_rows + k_rows;
  return {rows * D + rows, (q * q_rows + n * k_rows) * D + (f == Form::Merged ? H : 1) * q * n * D,
          F * (n * rows + H * q * n)};
}

Cost ov_cost(int64_t D, int64_t H, int64_t n, int64_t q, Form f) {
  // Factorized: v projection and W_O (2 D^2 + 2 D), A_h V_h (n^2 D), then W_O (n D^2).
  // Merged: A_h X per head (H n^2 D), then [W_O^h W_V^h]_h (H D^2, one output bias).
  if (f == Form::Merged) return {H * D * D + D, H * q * n * D + q * H * D * D, F * (q * H * D + q * D)};
  return {2 * D * D + 2 * D, n * D * D + q * D * D + q * n * D, F * (n * D + q * D + q * D)};
}

LayerCost layer_cost(const ViTConfig& c, int l, int64_t n, int64_t q) {
  const int64_t D = c.dim, H = c.heads, M = c.mlp_dim;
  return {qk_cost(D, H, n, q, c.qk[l]), ov_cost(D, H, n, q, c.ov[l]),
          {2 * D * M + M + D, 2 * q * D * M, F * (2 * q * M + q * D)},
          {4 * D, 0, F * (n * D + q * D + 2 * n + 2 * q)}};  // both norms' outputs, means and rstds
}

}  // namespace

Cost qk_cost(int64_t D, int64_t H, int64_t n, Form f) { return qk_cost(D, H, n, n, f); }
Cost ov_cost(int64_t D, int64_t H, int64_t n, Form f) { return ov_cost(D, H, n, n, f); }

ModelCost model_cost(const ViTConfig& c, int tokens) {
  const int64_t D = c.dim, n = tokens > 0 ? tokens : c.tokens();
  const int64_t patches = n - 1, pd = c.patch_dim(), K = c.num_classes;
  ModelCost m;
  m.embed = {D * pd + D + D + n * D, patches * pd * D, F * (patches * pd + patches * D + n * D)};
  for (int l = 0; l < c.depth; ++l) m.layers.push_back(layer_cost(c, l, n, n));
  m.head = {2 * D + (K > 0 ? K * D + K : 0), K * D, F * (D + 2 + (K > 0 ? K : D))};
  return m;
}

ModelCost forward_cost(const ViTConfig& c) {
  ModelCost m = model_cost(c);
  m.layers.back() = layer_cost(c, c.depth - 1, c.tokens(), 1);
  return m;
}

ViTConfig with_forms(const ViTConfig& c, Form qk, Form ov) {
  ViTConfig r = c;
  r.qk.assign(c.depth, qk);
  r.ov.assign(c.depth, ov);
  return r;
}

ViTConfig auto_forms(const ViTConfig& c, int tokens) {
  const int64_t D = c.dim, H = c.heads, n = tokens > 0 ? tokens : c.tokens();
  auto cheaper = [](const Cost& merged, const Cost& fact) {
    return merged.macs < fact.macs || (merged.macs == fact.macs && merged.params < fact.params);
  };
  ViTConfig r = c;
  const bool qk = cheaper(qk_cost(D, H, n, Form::Merged), qk_cost(D, H, n, Form::Factorized));
  const bool ov = cheaper(ov_cost(D, H, n, Form::Merged), ov_cost(D, H, n, Form::Factorized));
  r.qk.assign(c.depth, qk ? Form::Merged : Form::Factorized);
  r.ov.assign(c.depth, ov ? Form::Merged : Form::Factorized);
  return r;
}

}  // namespace vitqk
