#pragma once
// Conversion between the attention forms of the README's "The math in one screen", per layer and per pair.
//
// Merge query-key (exact): per head, the qk.weight block W_h = Wk_h^T Wq_h / sqrt(d_h)
// ([D, D], nn.Linear layout, so p_i = W_h x_i + u_h) and u_h = Wk_h^T bq_h / sqrt(d_h). The key
// bias only adds q_i . bk_h, constant along each softmax row, so it drops out exactly.
// Merge value-output (exact): M_h = W_O^h Wv_h ([D, D]) side by side in ov.weight [D, H*D];
// softmax rows sum to one, so the value bias folds into the output bias: b = b_O + W_O bv.
//
// Unmerge (SVD): query-key from the homogeneous [D+1, D] matrix B_h = [W_h^T; u_h^T],
// value-output from M_h. Exact when the rank is at most d_h (a model that came from a
// factorized one); otherwise truncated to the kept rank, with its relative error reported.
#include <string>
#include <vector>

#include "model/vit.h"

namespace vitqk {

struct UnmergeOptions {
  int rank = 0;      // singular values kept per head; 0: d_h (the most a factorized head holds)
  double tol = 0;    // if > 0: the smallest rank whose relative Frobenius error is <= tol
};

struct HeadReport {
  int layer, head;
  std::string pair;      // "qk" or "ov"
  int rank;              // singular values kept
  int numerical_rank;    // singular values above 1e-6 of the largest
  double rel_error;      // ||B - B_r||_F / ||B||_F
  bool exact() const { return rel_error < 1e-6; }  // the head kept all it had
  std::vector<double> singular_values;  // all of them, largest first (how much rank the head uses)
};

// Returns m converted to the given per-layer forms (pairs already in their target form are
// copied). Unmerging fills `report` (if given) with one entry per head.
ViT convert(const ViT& m, const std::vector<Form>& qk, const std::vector<Form>& ov, const UnmergeOptions& opts = {},
            std::vector<HeadReport>* report = nullptr);

// Parses --layers: "all", "auto" (cost model's choice), "none", or a list "0,2,5-7".
// Returns which layers are selected.
std::vector<bool> parse_layers(const std::string& spec, int depth);

}  // namespace vitqk

namespace vitqk {

// Runs both models on the same random batch (pixels ~ N(0, 1)) and compares their outputs.
struct LogitDiff {
  double max_abs_diff, max_abs_logit;
  double relative() const;  // max_abs_diff / max(1, max_abs_logit)
};
LogitDiff compare_on_random_batch(const ViT& a, const ViT& b, int batch = 4, uint64_t seed = 1);

// The per-layer forms that `--attention`/`--ov` (factorized|merged|auto) or `--layers` with
// `--pairs` ask for. An empty choice keeps the model's own form.
std::vector<Form> choose_forms(const ViTConfig& c, const std::string& choice, bool qk_pair);

}  // namespace vitqk
