#include "model/convert.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "core/error.h"
#include "core/gemm.h"
#include "core/threads.h"
#include "core/rng.h"
#include "model/cost.h"

extern "C" void dgesdd_(const char* jobz, const int* m, const int* n, double* a, const int* lda, double* s, double* u,
                        const int* ldu, double* vt, const int* ldvt, double* work, const int* lwork, int* iwork,
                        int* info);

namespace vitqk {

namespace {

// Thin SVD of a row-major [rows, cols] matrix in double precision: U [rows, k], S [k],
// Vt [k, cols] (row-major), k = min(rows, cols).
struct Svd {
  int rows, cols, k;
  std::vector<double> U, S, Vt;
};

Svd svd(const std::vector<double>& a, int rows, int cols) {
  // LAPACK is column-major: the row-major A is A^T in its eyes, so decompose A^T = V S U^T.
  Svd r{rows, cols, std::min(rows, cols), {}, {}, {}};
  std::vector<double> at(a);  // column-major [cols, rows] == row-major a
  const int m = cols, n = rows, k = r.k;
  std::vector<double> u(size_t(m) * k), vt(size_t(k) * n);
  r.S.resize(k);
  std::vector<int> iwork(8 * size_t(k));
  int lwork = -1, info = 0;
  double wq = 0;
  const char jobz = 'S';
  dgesdd_(&jobz, &m, &n, at.data(), &m, r.S.data(), u.data(), &m, vt.data(), &k, &wq, &lwork, iwork.data(), &info);
  lwork = int(wq);
  std::vector<double> work(lwork);
  dgesdd_(&jobz, &m, &n, at.data(), &m, r.S.data(), u.data(), &m, vt.data(), &k, work.data(), &lwork, iwork.data(),
          &info);
  if (info != 0) fail("SVD failed to converge (LAPACK dgesdd info ", info, ")");
  // A^T = u S vt (column-major) -> A = vt^T S u^T. Column-major vt [k, n] read row-major is
  // vt^T [n, k] = U of A; column-major u [m, k] read row-major is u^T [k, m] = Vt of A.
  r.U = std::move(vt);
  r.Vt = std::move(u);
  return r;
}

int choose_rank(const std::vector<double>& S, int max_rank, const UnmergeOptions& o) {
  if (o.tol <= 0) return std::min(o.rank > 0 ? o.rank : max_rank, max_rank);
  double total = 0;
  for (double s : S) total += s * s;
  double tail = total;
  for (int r = 0; r <= max_rank; ++r) {
    if (std::sqrt(std::max(tail, 0.0) / std::max(total, 1e-300)) <= o.tol) return r;
    if (r < int(S.size())) tail -= S[r] * S[r];
  }
  return max_rank;
}

HeadReport report_for(const std::vector<double>& S, int rank, int layer, int head, const char* pair) {
  double total = 0, tail = 0;
  int numerical = 0;
  for (size_t i = 0; i < S.size(); ++i) {
    total += S[i] * S[i];
    if (int(i) >= rank) tail += S[i] * S[i];
    if (S[i] > 1e-6 * S[0]) ++numerical;
  }
  return {layer, head, pair, rank, numerical, total > 0 ? std::sqrt(tail / total) : 0.0, S};
}

// Views of one layer's attention parameters: read-only in the source model, writable in
// the converted one.
template <typename T>
struct AttnViews {
  T *w_in, *b_in, *w_out, *b_out;
  AttentionDims d;
};
using Src = AttnViews<const float>;
using Dst = AttnViews<float>;

template <typename Model>  // ViT or const ViT
auto attn_views(Model& m, int l) {
  const BlockOffsets& o = m.layout.blocks[l];
  using T = std::remove_pointer_t<decltype(m.p(0))>;
  return AttnViews<T>{m.p(o.w_in), m.p(o.b_in), m.p(o.w_out), m.p(o.b_out), attention_dims(m.cfg, l, 1)};
}

void merge_qk(const Src& src, const Dst& dst) {
  const int D = src.d.D, H = src.d.H, dh = src.d.dh();
  const float s = 1.0f / std::sqrt(float(dh));
  for (int h = 0; h < H; ++h) {
    const float* Wq = src.w_in + long(h) * dh * D;
    const float* Wk = src.w_in + long(D + h * dh) * D;
    const float* bq = src.b_in + h * dh;
    // W_h = Wk_h^T Wq_h / sqrt(dh)   [D, D]
    gemm(true, false, D, D, dh, s, Wk, D, Wq, D, 0.0f, dst.w_in + long(h) * D * D, D);
    // u_h = Wk_h^T bq_h / sqrt(dh)
    float* u = dst.b_in + long(h) * D;
    for (int c = 0; c < D; ++c) {
      double acc = 0;
      for (int r = 0; r < dh; ++r) acc += double(Wk[long(r) * D + c]) * bq[r];
      u[c] = float(acc * s);
    }
  }
}

void unmerge_qk(const Src& src, const Dst& dst, int layer, const UnmergeOptions& o,
                std::vector<HeadReport>* report) {
  const int D = src.d.D, H = src.d.H, dh = src.d.dh();
  const double scale = std::pow(double(dh), 0.25);  // q and k each carry dh^(1/4): q.k/sqrt(dh) is kept
  float *Wq = dst.w_in, *Wk = dst.w_in + long(D) * D, *bq = dst.b_in, *bk = dst.b_in + D;
  std::vector<HeadReport> heads(H);
  // parallel_tasks carries an SVD's failure out of the threads as an error (thrown inside an
  // OpenMP loop it would abort the process).
  parallel_tasks(H, [&](int h, int) {
    // B_h = [W_h^T; u_h^T]: s_ij = [x_i; 1]^T B_h x_j.
    std::vector<double> B(size_t(D + 1) * D);
    const float* W = src.w_in + long(h) * D * D;
    for (int i = 0; i < D; ++i)
      for (int j = 0; j < D; ++j) B[size_t(i) * D + j] = W[long(j) * D + i];
    for (int j = 0; j < D; ++j) B[size_t(D) * D + j] = src.b_in[long(h) * D + j];
    const Svd f = svd(B, D + 1, D);
    const int r = choose_rank(f.S, dh, o);
    heads[h] = report_for(f.S, r, layer, h, "qk");
    // Query rows from U_r S^(1/2) (last row: the bias), key rows from V_r S^(1/2).
    for (int k = 0; k < dh; ++k) {
      const double sk = k < r ? std::sqrt(f.S[k]) * scale : 0.0;
      float* q = Wq + long(h * dh + k) * D;
      float* kk = Wk + long(h * dh + k) * D;
      for (int i = 0; i < D; ++i) q[i] = float(f.U[size_t(i) * f.k + k] * sk);
      bq[h * dh + k] = float(f.U[size_t(D) * f.k + k] * sk);
      for (int j = 0; j < D; ++j) kk[j] = float(f.Vt[size_t(k) * D + j] * sk);
      bk[h * dh + k] = 0.0f;
    }
  });
  if (report) report->insert(report->end(), heads.begin(), heads.end());
}

void merge_ov(const Src& src, const Dst& dst) {
  const int D = src.d.D, H = src.d.H, dh = src.d.dh();
  const float* Wv = src.w_in + long(src.d.qk_rows()) * D;
  const float* bv = src.b_in + src.d.qk_rows();
  for (int h = 0; h < H; ++h)  // M_h = W_O^h Wv_h: W_O's columns of head h times Wv's rows of head h
    gemm(false, false, D, D, dh, 1.0f, src.w_out + h * dh, D, Wv + long(h) * dh * D, D, 0.0f, dst.w_out + long(h) * D,
         H * D);
  for (int i = 0; i < D; ++i) {  // b = b_O + W_O bv
    double acc = src.b_out[i];
    for (int j = 0; j < D; ++j) acc += double(src.w_out[long(i) * D + j]) * bv[j];
    dst.b_out[i] = float(acc);
  }
}

void unmerge_ov(const Src& src, const Dst& dst, int layer, const UnmergeOptions& o,
                std::vector<HeadReport>* report) {
  const int D = src.d.D, H = src.d.H, dh = src.d.dh();
  float* Wv = dst.w_in + long(dst.d.qk_rows()) * D;
  float* bv = dst.b_in + dst.d.qk_rows();
  std::vector<HeadReport> heads(H);
  parallel_tasks(H, [&](int h, int) {
    std::vector<double> M(size_t(D) * D);
    for (int i = 0; i < D; ++i)
      for (int j = 0; j < D; ++j) M[size_t(i) * D + j] = src.w_out[long(i) * H * D + long(h) * D + j];
    const Svd f = svd(M, D, D);
    const int r = choose_rank(f.S, dh, o);
    heads[h] = report_for(f.S, r, layer, h, "ov");
    for (int k = 0; k < dh; ++k) {  // W_O^h = U_r S^(1/2), Wv_h = S^(1/2) V_r^T
      const double sk = k < r ? std::sqrt(f.S[k]) : 0.0;
      for (int i = 0; i < D; ++i) dst.w_out[long(i) * D + h * dh + k] = float(f.U[size_t(i) * f.k + k] * sk);
      for (int j = 0; j < D; ++j) Wv[long(h * dh + k) * D + j] = float(f.Vt[size_t(k) * D + j] * sk);
      bv[h * dh + k] = 0.0f;
    }
  });
  std::memcpy(dst.b_out, src.b_out, sizeof(float) * D);
  if (report) report->insert(report->end(), heads.begin(), heads.end());
}

}  // namespace

ViT convert(const ViT& m, const std::vector<Form>& qk, const std::vector<Form>& ov, const UnmergeOptions& opts,
            std::vector<HeadReport>* report) {
  ViTConfig c = m.cfg;
  c.qk = qk, c.ov = ov;
  ViT out(c);
  // Everything outside attention keeps its name.
  for (const auto& p : out.layout.params())
    if (const ParamInfo* q = m.layout.find(p.name); q && q->shape == p.shape)
      std::memcpy(out.p(p.offset), m.p(q->offset), sizeof(float) * p.numel);
  for (int l = 0; l < c.depth; ++l) {
    const Src s = attn_views(m, l);
    const Dst d = attn_views(out, l);
    const int D = c.dim;
    // Query-key pair.
    if (m.cfg.qk[l] == qk[l]) {
      const long rows = s.d.qk_rows();
      std::memcpy(d.w_in, s.w_in, sizeof(float) * rows * D);
      std::memcpy(d.b_in, s.b_in, sizeof(float) * rows);
    } else if (qk[l] == Form::Merged) {
      merge_qk(s, d);
    } else {
      unmerge_qk(s, d, l, opts, report);
    }
    // Value-output pair (merging reads the source's value rows, unmerging writes the target's).
    if (m.cfg.ov[l] == ov[l]) {
      if (ov[l] == Form::Factorized) {
        std::memcpy(d.w_in + long(d.d.qk_rows()) * D, s.w_in + long(s.d.qk_rows()) * D, sizeof(float) * D * D);
        std::memcpy(d.b_in + d.d.qk_rows(), s.b_in + s.d.qk_rows(), sizeof(float) * D);
      }
      std::memcpy(d.w_out, s.w_out, sizeof(float) * D * s.d.out_cols());
      std::memcpy(d.b_out, s.b_out, sizeof(float) * D);
    } else if (ov[l] == Form::Merged) {
      merge_ov(s, d);
    } else {
      unmerge_ov(s, d, l, opts, report);
    }
  }
  return out;
}

std::vector<bool> parse_layers(const std::string& spec, int depth) {
  std::vector<bool> sel(depth, false);
  if (spec == "all") return std::vector<bool>(depth, true);
  if (spec == "none") return sel;
  size_t i = 0;
  auto number = [&]() {
    size_t j = i;
    while (j < spec.size() && std::isdigit(static_cast<unsigned char>(spec[j])) && j - i < 6) ++j;
    if (j == i) fail("--layers ", spec, ": expected all, auto, none or a list like 0,2,5-7");
    const int v = std::stoi(spec.substr(i, j - i));
    i = j;
    if (v >= depth) fail("--layers ", spec, ": layer ", v, " does not exist (the model has ", depth, ")");
    return v;
  };
  while (i < spec.size()) {
    const int a = number();
    int b = a;
    if (i < spec.size() && spec[i] == '-') ++i, b = number();
    if (b < a) fail("--layers ", spec, ": empty range ", a, "-", b);
    for (int l = a; l <= b; ++l) sel[l] = true;
    if (i < spec.size() && spec[i] != ',') fail("--layers ", spec, ": expected all, auto, none or a list like 0,2,5-7");
    if (i < spec.size()) ++i;
  }
  return sel;
}

double LogitDiff::relative() const { return max_abs_diff / std::max(1.0, max_abs_logit); }

LogitDiff compare_on_random_batch(const ViT& a, const ViT& b, int batch, uint64_t seed) {
  const ViTConfig& c = a.cfg;
  std::vector<float> pixels(size_t(batch) * c.in_chans * c.image_size * c.image_size);
  Rng rng(seed);
  for (float& v : pixels) v = rng.normal();
  Activations xa, xb;
  vit_forward(a, pixels.data(), batch, xa);
  vit_forward(b, pixels.data(), batch, xb);
  LogitDiff d{0, 0};
  for (long i = 0; i < long(batch) * c.out_dim(); ++i) {
    // std::max would drop a NaN: a NaN logit on either side is an infinite difference.
    const double diff = std::fabs(double(xa.logits[i]) - double(xb.logits[i]));
    d.max_abs_diff = std::isnan(diff) ? INFINITY : std::max(d.max_abs_diff, diff);
    d.max_abs_logit = std::max(d.max_abs_logit, double(std::fabs(xa.logits[i])));
  }
  return d;
}

std::vector<Form> choose_forms(const ViTConfig& c, const std::string& choice, bool qk_pair) {
  const std::vector<Form>& own = qk_pair ? c.qk : c.ov;
  if (choice.empty()) return own;
  if (choice == "auto") {
    const ViTConfig a = auto_forms(c);
    return qk_pair ? a.qk : a.ov;
  }
  return std::vector<Form>(c.depth, parse_form(choice));
}

}  // namespace vitqk
