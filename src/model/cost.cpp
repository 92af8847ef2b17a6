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

Cost qk_cost(int64_t D, int64_t H, int64_t n, Form f) {
  // Factorized: q and k projections (2 D^2 + 2 D), scores q_h . k_h over all heads (n^2 D).
  // Merged: p_h = x A_h + u_h for every head (H (D^2 + D)), scores p_h . x_j (H n^2 D).
  // Scores and softmax probabilities ([H, n, n]) are kept either way.
  const int64_t rows = f == Form::Merged ? H * D : 2 * D;
  return {rows * D + rows, n * rows * D + (f == Form::Merged ? H : 1) * n * n * D, F * (n * rows + H * n * n)};
}

Cost ov_cost(int64_t D, int64_t H, int64_t n, Form f) {
  // Factorized: v projection and W_O (2 D^2 + 2 D), A_h V_h (n^2 D), then W_O (n D^2).
  // Merged: A_h X per head (H n^2 D), then [W_O^h W_V^h]_h (H D^2, one output bias).
  if (f == Form::Merged) return {H * D * D + D, H * n * n * D + n * H * D * D, F * (n * H * D + n * D)};
  return {2 * D * D + 2 * D, 2 * n * D * D + n * n * D, F * (n * D + n * D + n * D)};
}

ModelCost model_cost(const ViTConfig& c, int tokens) {
  const int64_t D = c.dim, H = c.heads, M = c.mlp_dim, n = tokens > 0 ? tokens : c.tokens();
  const int64_t patches = n - 1, pd = c.patch_dim(), K = c.num_classes;
  ModelCost m;
  m.embed = {D * pd + D + D + n * D, patches * pd * D, F * (patches * pd + patches * D + n * D)};
  for (int l = 0; l < c.depth; ++l) {
    LayerCost lc;
    lc.qk = qk_cost(D, H, n, c.qk[l]);
    lc.ov = ov_cost(D, H, n, c.ov[l]);
    lc.mlp = {2 * D * M + M + D, 2 * n * D * M, F * (2 * n * M + n * D)};
    lc.norms = {4 * D, 0, F * (2 * n * D + 4 * n)};  // both norms' outputs, means and rstds
    m.layers.push_back(lc);
  }
  m.head = {2 * D + (K > 0 ? K * D + K : 0), K * D, F * (D + 2 + (K > 0 ? K : D))};
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
