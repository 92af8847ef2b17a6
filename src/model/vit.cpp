#include "model/vit.h"

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "core/error.h"
#include "core/gemm.h"
#include "core/threads.h"
#include "ops/attention.h"
#include "ops/gelu.h"
#include "ops/layernorm.h"
#include "ops/linear.h"
#include "ops/patch_embed.h"

namespace vitqk {

namespace {
ViTConfig validated(ViTConfig c) {
  c.validate("model config");
  return c;
}

// A file of a few hundred kilobytes can describe a valid model whose buffers need terabytes
// (65026 tokens of width 1: attention scores of 17 GB per image and layer). Refusing what the
// machine cannot hold beats being killed, or starving everything else, half way through.
void check_fits(long floats, const char* what, int B) {
  const double bytes = double(floats) * sizeof(float);
  const double ram = double(sysconf(_SC_PHYS_PAGES)) * double(sysconf(_SC_PAGESIZE));
  if (bytes > ram)
    fail("model: ", what, " of a batch of ", B, " need ", bytes / double(1L << 30), " GiB, more than this machine's ",
         ram / double(1L << 30), " GiB of memory");
}

// Views into one buffer, each starting on a 64-byte cache line. Packed one after another,
// a [197, 768] view began wherever the previous [197] statistics ended, so every vector
// store of a GEMM's output row straddled two lines: aligned, a training step is ~5% faster.
// `carve` names the views; it runs once with no buffer to measure, then on the buffer.
template <class Carve>
void carve_aligned(std::vector<float>& buf, const char* what, int B, Carve carve) {
  constexpr long kLine = 64 / sizeof(float);
  long used = 0;
  float* base = nullptr;
  auto take = [&](long count) {
    float* view = base ? base + used : nullptr;
    used += (count + kLine - 1) / kLine * kLine;
    return view;
  };
  carve(take);
  check_fits(used, what, B);
  buf.assign(used + kLine - 1, 0.0f);
  base = buf.data() + (kLine - reinterpret_cast<uintptr_t>(buf.data()) / sizeof(float) % kLine) % kLine;
  used = 0;
  carve(take);
}
}  // namespace

ViT::ViT(ViTConfig c) : cfg(validated(std::move(c))), layout(cfg), params(layout.size(), 0.0f) {}

void Activations::ensure(const ViTConfig& c, int B, bool keep) {
  if (batch == B && keep_all == keep && shaped_for_ == &c && !layers.empty() && int(layers.size()) == c.depth)
    return;
  const long n = c.tokens(), D = c.dim, Bn = B * n, M = c.mlp_dim, H = c.heads;
  long max_rows = 0, max_cols = 0;
  for (int l = 0; l < c.depth; ++l) {
    const AttentionDims d = attention_dims(c, l, B);
    max_rows = std::max<long>(max_rows, d.in_rows());
    max_cols = std::max<long>(max_cols, d.out_cols());
  }
  carve_aligned(buf_, "the activations", B, [&](auto take) {
    const long patches = B * (n - 1);
    cols = take(patches * c.patch_dim());
    patch_out = take(patches * D);
    x0 = take(Bn * D);
    layers.assign(c.depth, {});
    for (int l = 0; l < c.depth; ++l) {
      if (!keep && l > 0) {
        layers[l] = layers[0];
        continue;
      }
      Layer& L = layers[l];
      L.ln1 = take(Bn * D), L.ln1_mean = take(Bn), L.ln1_rstd = take(Bn);
      L.in_proj = take(Bn * max_rows);
      L.att = take(B * H * n * n);
      L.heads = take(Bn * max_cols);
      // At inference the residual stream is summed into x0 in place: ping-ponging it between
      // two buffers took two copies per layer, ~0.7% of ViT-B/16.
      L.res_mid = keep ? take(Bn * D) : x0;
      L.ln2 = take(Bn * D), L.ln2_mean = take(Bn), L.ln2_rstd = take(Bn);
      L.fc1 = take(Bn * M);
      L.gelu = keep ? take(Bn * M) : L.fc1;
      L.res_out = keep ? take(Bn * D) : x0;
    }
    cls_ln1 = take(B * D);
    cls_norm = take(B * D), cls_mean = take(B), cls_rstd = take(B);
    logits = take(B * c.out_dim());
  });
  batch = B, keep_all = keep, shaped_for_ = &c;
}

namespace {

// Where each linear layer's matrix [N, K] starts in the layout, in layout order; its first
// `split` rows (if 0 < split < N) are packed apart from the rest (the last block's queries).
struct MatrixAt {
  size_t offset;
  int N, K, split;
};

// The views of a model's parameters, given where a vector starts (vec(offset)) and what a
// matrix at a layout offset is (mat(offset) -> LinearWeights without bias or shape).
template <class Vec, class Mat>
StemWeights stem_at(const ViTConfig& c, const ParamLayout& L, Vec vec, Mat mat) {
  StemWeights s{};
  s.patch = mat(L.patch_w), s.patch.b = vec(L.patch_b), s.patch.N = c.dim, s.patch.K = c.patch_dim();
  if (c.num_classes > 0)
    s.head = mat(L.head_w), s.head.b = vec(L.head_b), s.head.N = c.num_classes, s.head.K = c.dim;
  s.cls = vec(L.cls), s.pos = vec(L.pos), s.norm_w = vec(L.norm_w), s.norm_b = vec(L.norm_b);
  return s;
}

bool is_last(const ViTConfig& c, int l) { return l == c.depth - 1; }

// Layer l's attention as the forward and backward passes run it: one query per image in the
// last block (see forward).
AttentionDims block_dims(const ViTConfig& c, int l, int B) {
  AttentionDims d = attention_dims(c, l, B);
  if (is_last(c, l)) d.queries = 1;
  return d;
}

// Row b * n of src [B * n, D] (image b's class token) to row b of dst [B, D], and back. The
// gather may run in place: row b only ever moves back.
void gather_class_rows(float* dst, const float* src, int B, int n, int D) {
  for (int b = 0; b < B; ++b) std::memmove(dst + long(b) * D, src + long(b) * n * D, sizeof(float) * D);
}
void scatter_class_rows(float* dst, const float* src, int B, int n, int D) {
  for (int b = 0; b < B; ++b) std::copy_n(src + long(b) * D, D, dst + long(b) * n * D);
}

template <class Vec, class Mat>
BlockWeights block_at(const ViTConfig& c, const ParamLayout& L, int l, Vec vec, Mat mat) {
  const BlockOffsets& o = L.blocks[l];
  const AttentionDims d = attention_dims(c, l, 1);
  auto linear = [&](size_t w, size_t b, int N, int K) {
    LinearWeights r = mat(w);
    r.b = vec(b), r.N = N, r.K = K;
    return r;
  };
  const bool last = is_last(c, l);
  BlockWeights r{vec(o.ln1_w),
                 vec(o.ln1_b),
                 vec(o.ln2_w),
                 vec(o.ln2_b),
                 last ? LinearWeights{} : linear(o.w_in, o.b_in, d.in_rows(), c.dim),
                 linear(o.w_out, o.b_out, c.dim, d.out_cols()),
                 linear(o.fc1_w, o.fc1_b, c.mlp_dim, c.dim),
                 linear(o.fc2_w, o.fc2_b, c.dim, c.mlp_dim),
                 {},
                 {}};
  if (last) {
    const size_t q = d.q_cols();
    r.in_q = linear(o.w_in, o.b_in, int(q), c.dim);
    // None when both pairs are merged: keys and values are then x itself.
    if (d.in_rows() > int(q)) r.in_kv = linear(o.w_in + q * c.dim, o.b_in + q, d.in_rows() - int(q), c.dim);
  }
  return r;
}

std::vector<MatrixAt> matrices_of(const ViTConfig& c, const ParamLayout& L) {
  std::vector<MatrixAt> r;
  auto add = [&](const LinearWeights& w, size_t offset) { r.push_back({offset, w.N, w.K, 0}); };
  auto none = [](size_t) { return static_cast<const float*>(nullptr); };
  auto plain = [](size_t) { return LinearWeights{}; };
  const StemWeights s = stem_at(c, L, none, plain);
  add(s.patch, L.patch_w);
  for (int l = 0; l < c.depth; ++l) {
    const BlockWeights b = block_at(c, L, l, none, plain);
    const BlockOffsets& o = L.blocks[l];
    // Staged whole (timm stores it as one parameter); the last block's is packed as in_q | in_kv.
    r.push_back({o.w_in, attention_dims(c, l, 1).in_rows(), c.dim, b.in_q.N});
    add(b.out, o.w_out), add(b.fc1, o.fc1_w), add(b.fc2, o.fc2_w);
  }
  if (c.num_classes > 0) add(s.head, L.head_w);
  return r;
}

// One forward pass over any parameter storage; block(l) gives layer l's weights.
template <class BlockAt>
void forward(const ViTConfig& c, const StemWeights& s, BlockAt block, const float* pixels, int B, Activations& a) {
  a.ensure(c, B, a.keep_all);
  const int n = c.tokens(), D = c.dim, Bn = B * n, M = c.mlp_dim;

  const PatchDims pd{B, c.in_chans, c.image_size, c.patch_size, D};
  patch_embed_forward(pd, pixels, s.patch, s.cls, s.pos, a.cols, a.patch_out, a.x0);

  // Only the class token reaches the head. So the last block computes queries, attention,
  // output projection and MLP for that one row per image; every token is still normed and
  // projected to keys and values. The logits are timm's (which computes every row and pools
  // token 0), and so are the gradients: the other rows' outputs feed nothing. ~7% less work in
  // ViT-B/16 at inference, ~13% of a training step of the default model (model/cost).
  for (int l = 0; l < c.depth; ++l) {
    const BlockWeights& w = block(l);
    Activations::Layer& A = a.layers[l];
    const float* x = a.layer_input(l);
    const AttentionDims d = block_dims(c, l, B);
    const int rows = B * d.queries;

    layernorm_forward(A.ln1, A.ln1_mean, A.ln1_rstd, x, w.ln1_w, w.ln1_b, Bn, D, c.eps);
    const float* residual = x;
    if (d.queries == n) {
      linear_forward(A.in_proj, A.ln1, w.in, Bn);
    } else {  // P = [class-token queries | every token's keys and values]
      gather_class_rows(a.cls_ln1, A.ln1, B, n, D);
      linear_forward(A.in_proj, a.cls_ln1, w.in_q, B);
      linear_forward(A.in_proj + long(B) * d.q_cols(), A.ln1, w.in_kv, Bn);
      // The residual's class tokens side by side, as the head outputs are (in place at
      // inference, where res_mid is x).
      gather_class_rows(A.res_mid, x, B, n, D);
      residual = A.res_mid;
    }
    attention_forward(d, A.in_proj, A.ln1, A.att, A.heads);
    linear_forward(A.res_mid, A.heads, w.out, rows, Epilogue::Residual, residual);

    layernorm_forward(A.ln2, A.ln2_mean, A.ln2_rstd, A.res_mid, w.ln2_w, w.ln2_b, rows, D, c.eps);
    if (a.keep_all) {  // training keeps the pre-activation for GELU's backward
      linear_forward(A.fc1, A.ln2, w.fc1, rows);
      gelu_forward(A.gelu, A.fc1, long(rows) * M);
    } else {
      linear_forward(A.gelu, A.ln2, w.fc1, rows, Epilogue::Gelu);
    }
    linear_forward(A.res_out, A.gelu, w.fc2, rows, Epilogue::Residual, A.res_mid);
  }

  // timm norms all tokens, then pools token 0: norming the class tokens alone gives the same numbers.
  layernorm_forward(a.cls_norm, a.cls_mean, a.cls_rstd, a.layer_input(c.depth), s.norm_w, s.norm_b, B, D, c.eps);
  if (c.num_classes > 0) linear_forward(a.logits, a.cls_norm, s.head, B);
  else std::memcpy(a.logits, a.cls_norm, sizeof(float) * B * D);
}

}  // namespace

StemWeights stem_weights(const ViT& m) {
  return stem_at(m.cfg, m.layout, [&](size_t o) { return m.p(o); }, [&](size_t o) { return LinearWeights{m.p(o)}; });
}

BlockWeights block_weights(const ViT& m, int layer) {
  return block_at(m.cfg, m.layout, layer, [&](size_t o) { return m.p(o); },
                  [&](size_t o) { return LinearWeights{m.p(o)}; });
}

void vit_forward(const ViT& m, const float* pixels, int B, Activations& a) {
  forward(m.cfg, stem_weights(m), [&](int l) { return block_weights(m, l); }, pixels, B, a);
}

void vit_forward(const PackedViT& m, const float* pixels, int B, Activations& a) {
  if (a.keep_all) fail("internal error: a packed model has no plain weights for a backward pass");
  forward(m.cfg, m.stem, [&](int l) -> const BlockWeights& { return m.blocks[l]; }, pixels, B, a);
}

PackedViT::PackedViT(ViTConfig c, Precision p, const Source& read)
    : cfg(validated(std::move(c))), layout(cfg), precision(p) {
  const std::vector<MatrixAt> mats = matrices_of(cfg, layout);
  size_t matrix_floats = 0;
  for (const MatrixAt& m : mats) matrix_floats += size_t(m.N) * m.K;
  vectors_.resize(layout.size() - matrix_floats);
  matrices_.reserve(2 * mats.size());  // views point into it: no reallocation
  // Parameters arrive in layout order; a matrix made of several parameters (the pieces of a
  // merged input projection), or a parameter packed as two matrices (timm's qkv in the last
  // block), is gathered in `staging`, then packed. Vectors are stored contiguously; both are
  // remembered by their layout offset.
  std::vector<std::pair<size_t, size_t>> vec_at;  // (layout offset, index into vectors_)
  std::vector<std::pair<size_t, size_t>> mat_at;  // (layout offset, index into matrices_)
  std::vector<float> staging;
  size_t next_vec = 0, mi = 0;
  auto pack = [&](size_t offset, const float* W, int N, int K) {
    mat_at.push_back({offset, matrices_.size()});
    matrices_.emplace_back(W, N, K, precision);
  };
  for (const ParamInfo& q : layout.params()) {
    if (mi < mats.size() && q.offset >= mats[mi].offset) {
      const MatrixAt& m = mats[mi];
      const size_t size = size_t(m.N) * m.K;
      if (staging.size() < size) staging.resize(size);
      read(q, staging.data() + (q.offset - m.offset));
      if (q.offset + q.numel < m.offset + size) continue;
      if (m.split == 0 || m.split == m.N) {
        pack(m.offset, staging.data(), m.N, m.K);
      } else {
        const size_t at = size_t(m.split) * m.K;
        pack(m.offset, staging.data(), m.split, m.K);
        pack(m.offset + at, staging.data() + at, m.N - m.split, m.K);
      }
      ++mi;
    } else {
      read(q, vectors_.data() + next_vec);
      vec_at.push_back({q.offset, next_vec});
      next_vec += q.numel;
    }
  }
  // Vectors that belong together (the biases of a split input projection) are adjacent in
  // the layout with no matrix between them, so they stay adjacent here.
  auto vec = [&](size_t offset) -> const float* {
    auto it = std::upper_bound(vec_at.begin(), vec_at.end(), std::pair{offset, ~size_t(0)}) - 1;
    return vectors_.data() + it->second + (offset - it->first);
  };
  auto mat = [&](size_t offset) {
    for (auto [at, i] : mat_at)
      if (at == offset) return LinearWeights{nullptr, &matrices_[i]};
    fail("internal error: no matrix at layout offset ", offset);
  };
  stem = stem_at(cfg, layout, vec, mat);
  for (int l = 0; l < cfg.depth; ++l) blocks.push_back(block_at(cfg, layout, l, vec, mat));
}

PackedViT::PackedViT(const ViT& m, Precision p)
    : PackedViT(m.cfg, p, [&](const ParamInfo& q, float* dst) { std::copy_n(m.p(q.offset), q.numel, dst); }) {}

size_t PackedViT::bytes() const {
  size_t b = vectors_.size() * sizeof(float);
  for (const PackedWeights& w : matrices_) b += w.bytes();
  return b;
}

void BackwardBuffers::ensure(const ViTConfig& c, int B) {
  // The attention scratch is per thread.
  if (batch_ == B && shaped_for_ == &c && threads_ == max_threads()) return;
  const long n = c.tokens(), D = c.dim, Bn = B * n;
  long max_rows = 0, max_cols = 0;
  for (int l = 0; l < c.depth; ++l) {
    const AttentionDims d = attention_dims(c, l, B);
    max_rows = std::max<long>(max_rows, d.in_rows());
    max_cols = std::max<long>(max_cols, d.out_cols());
  }
  carve_aligned(buf_, "the gradient buffers", B, [&](auto take) {
    dres = take(Bn * D), dln = take(Bn * D), dP = take(Bn * max_rows), dheads = take(Bn * max_cols);
    dhidden = take(Bn * c.mlp_dim), dpatch = take(B * (n - 1) * D), dcls = take(B * D), dP_cls = take(B * max_rows);
    scratch = take(long(max_threads()) * n * n);
  });
  batch_ = B, shaped_for_ = &c, threads_ = max_threads();
}

namespace {
// Backward of the last block's input projection, whose queries are the class tokens' alone:
// dP is [B, q_cols] (queries of a.cls_ln1) then [B*n, R - q_cols] (every token's keys and
// values). Each class row's input gradient is one product over its whole row of dP, queries
// then keys and values, so its sums run in the order of the projection over every row: on the
// register kernel (training's slots) the same bits as computing every row.
void class_query_projection_backward(const AttentionDims& d, const Activations& a, const float* W, float* dW,
                                     float* db, bool shared_kv, BackwardBuffers& w) {
  const int B = d.B, n = d.n, D = d.D, R = d.in_rows(), qc = d.q_cols(), kv = R - qc;
  const float* dKV = w.dP + long(B) * qc;
  const Activations::Layer& A = a.layers.back();
  linear_backward(nullptr, dW, db, w.dP, a.cls_ln1, W, B, D, qc);
  // Attention's own gradient of the class rows (through shared keys and values) is added last.
  if (shared_kv) gather_class_rows(w.dcls, w.dln, B, n, D);
  if (kv > 0)
    linear_backward(w.dln, dW + long(qc) * D, db + qc, dKV, A.ln1, W + long(qc) * D, B * n, D, kv, shared_kv);
  for (int b = 0; b < B; ++b) {
    std::copy_n(w.dP + long(b) * qc, qc, w.dP_cls + long(b) * R);
    std::copy_n(dKV + long(b) * n * kv, kv, w.dP_cls + long(b) * R + qc);
  }
  gemm(false, false, B, D, R, 1.0f, w.dP_cls, R, W, D, shared_kv ? 1.0f : 0.0f, w.dcls, D);
  scatter_class_rows(w.dln, w.dcls, B, n, D);
}
}  // namespace

void vit_backward(const ViT& m, const float* dlogits, const Activations& a, float* grads, BackwardBuffers& w) {
  const ViTConfig& c = m.cfg;
  const ParamLayout& L = m.layout;
  const int B = a.batch, n = c.tokens(), D = c.dim, Bn = B * n, M = c.mlp_dim;
  w.ensure(c, B);
  auto g = [&](size_t off) { return grads + off; };

  // Head and final norm: the class tokens' rows, side by side as the last block computed them.
  if (c.num_classes > 0)
    linear_backward(w.dcls, g(L.head_w), g(L.head_b), dlogits, a.cls_norm, m.p(L.head_w), B, D, c.num_classes);
  else
    std::copy(dlogits, dlogits + long(B) * D, w.dcls);
  std::fill(w.dres, w.dres + long(B) * D, 0.0f);
  layernorm_backward(w.dres, g(L.norm_w), g(L.norm_b), w.dcls, a.layer_input(c.depth), a.cls_mean, a.cls_rstd,
                     m.p(L.norm_w), B, D);

  for (int l = c.depth - 1; l >= 0; --l) {
    const BlockOffsets& o = L.blocks[l];
    const Activations::Layer& A = a.layers[l];
    const AttentionDims d = block_dims(c, l, B);
    const int rows = B * d.queries;
    // MLP: res_out = res_mid + fc2(gelu(fc1(norm2(res_mid)))); w.dres holds dL/d res_out.
    linear_backward(w.dhidden, g(o.fc2_w), g(o.fc2_b), w.dres, A.gelu, m.p(o.fc2_w), rows, M, D);
    gelu_backward(w.dhidden, A.fc1, A.gelu, w.dhidden, long(rows) * M);
    linear_backward(w.dln, g(o.fc1_w), g(o.fc1_b), w.dhidden, A.ln2, m.p(o.fc1_w), rows, D, M);
    layernorm_backward(w.dres, g(o.ln2_w), g(o.ln2_b), w.dln, A.res_mid, A.ln2_mean, A.ln2_rstd, m.p(o.ln2_w), rows,
                       D);
    // Attention: res_mid = x + W_out heads + b_out; w.dres now holds dL/d res_mid.
    linear_backward(w.dheads, g(o.w_out), g(o.b_out), w.dres, A.heads, m.p(o.w_out), rows, d.out_cols(), D);
    if (d.queries < n) {  // the class rows' gradient reaches x's class rows; x's other rows get norm1's alone
      std::copy_n(w.dres, long(B) * D, w.dcls);
      std::fill(w.dres, w.dres + long(Bn) * D, 0.0f);
      scatter_class_rows(w.dres, w.dcls, B, n, D);
    }
    // Merged keys and values are the normed tokens themselves: their gradient goes straight
    // into dln, ahead of the input projection's.
    const bool shared_kv = d.qk == Form::Merged || d.ov == Form::Merged;
    if (shared_kv) std::fill(w.dln, w.dln + long(Bn) * D, 0.0f);
    attention_backward(d, A.in_proj, A.ln1, A.att, w.dheads, w.dP, w.dln, w.scratch);
    if (d.queries == n)
      linear_backward(w.dln, g(o.w_in), g(o.b_in), w.dP, A.ln1, m.p(o.w_in), Bn, D, d.in_rows(), shared_kv);
    else
      class_query_projection_backward(d, a, m.p(o.w_in), g(o.w_in), g(o.b_in), shared_kv, w);
    layernorm_backward(w.dres, g(o.ln1_w), g(o.ln1_b), w.dln, a.layer_input(l), A.ln1_mean, A.ln1_rstd, m.p(o.ln1_w),
                       Bn, D);
  }
  const PatchDims pd{B, c.in_chans, c.image_size, c.patch_size, D};
  patch_embed_backward(pd, w.dres, a.cols, w.dpatch, g(L.patch_w), g(L.patch_b), g(L.cls), g(L.pos));
}

}  // namespace vitqk
