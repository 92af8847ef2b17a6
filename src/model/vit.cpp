#include "model/vit.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "core/threads.h"
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
  const long per_layer = Bn * D * 4 + Bn * 4 + Bn * max_rows + B * H * n * n + Bn * max_cols +
                         Bn * M * (keep ? 2 : 1);
  const long patches = B * (n - 1);
  const long total = patches * c.patch_dim() + patches * D + Bn * D + per_layer * (keep ? c.depth : 1) +
                     B * (D + 2) + B * c.out_dim();
  check_fits(total, "the activations", B);
  buf_.assign(total, 0.0f);
  float* cur = buf_.data();
  auto take = [&](long count) {
    float* r = cur;
    cur += count;
    return r;
  };
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
    L.res_mid = take(Bn * D);
    L.ln2 = take(Bn * D), L.ln2_mean = take(Bn), L.ln2_rstd = take(Bn);
    L.fc1 = take(Bn * M);
    L.gelu = keep ? take(Bn * M) : L.fc1;
    // At inference the residual stream ping-pongs between x0 and res_mid.
    L.res_out = keep ? take(Bn * D) : x0;
  }
  cls_norm = take(B * D), cls_mean = take(B), cls_rstd = take(B);
  logits = take(B * c.out_dim());
  batch = B, keep_all = keep, shaped_for_ = &c;
}

void vit_forward(const ViT& m, const float* pixels, int B, Activations& a) {
  const ViTConfig& c = m.cfg;
  const ParamLayout& L = m.layout;
  a.ensure(c, B, a.keep_all);
  const int n = c.tokens(), D = c.dim, Bn = B * n, M = c.mlp_dim;

  const PatchDims pd{B, c.in_chans, c.image_size, c.patch_size, D};
  patch_embed_forward(pd, pixels, m.p(L.patch_w), m.p(L.patch_b), m.p(L.cls), m.p(L.pos), a.cols, a.patch_out,
                      a.x0);

  for (int l = 0; l < c.depth; ++l) {
    const BlockOffsets& o = L.blocks[l];
    Activations::Layer& A = a.layers[l];
    const float* x = a.layer_input(l);
    const AttentionDims d = attention_dims(c, l, B);

    layernorm_forward(A.ln1, A.ln1_mean, A.ln1_rstd, x, m.p(o.ln1_w), m.p(o.ln1_b), Bn, D, c.eps);
    linear_forward(A.in_proj, A.ln1, m.p(o.w_in), m.p(o.b_in), Bn, D, d.in_rows());
    attention_forward(d, A.in_proj, A.ln1, A.att, A.heads);
    std::memcpy(A.res_mid, x, sizeof(float) * Bn * D);
    linear_forward(A.res_mid, A.heads, m.p(o.w_out), m.p(o.b_out), Bn, d.out_cols(), D, true);

    layernorm_forward(A.ln2, A.ln2_mean, A.ln2_rstd, A.res_mid, m.p(o.ln2_w), m.p(o.ln2_b), Bn, D, c.eps);
    linear_forward(A.fc1, A.ln2, m.p(o.fc1_w), m.p(o.fc1_b), Bn, D, M);
    gelu_forward(A.gelu, A.fc1, long(Bn) * M);
    std::memcpy(A.res_out, A.res_mid, sizeof(float) * Bn * D);
    linear_forward(A.res_out, A.gelu, m.p(o.fc2_w), m.p(o.fc2_b), Bn, M, D, true);
  }

  // Only the class token reaches the head, so only it is normed (timm norms all tokens,
  // then pools token 0: the same numbers).
  const float* last = a.layer_input(c.depth);
  for (int b = 0; b < B; ++b)
    layernorm_forward(a.cls_norm + (long)b * D, a.cls_mean + b, a.cls_rstd + b, last + (long)b * n * D,
                      m.p(L.norm_w), m.p(L.norm_b), 1, D, c.eps);
  if (c.num_classes > 0)
    linear_forward(a.logits, a.cls_norm, m.p(L.head_w), m.p(L.head_b), B, D, c.num_classes);
  else
    std::memcpy(a.logits, a.cls_norm, sizeof(float) * B * D);
}

void BackwardBuffers::ensure(const ViTConfig& c, int B) {
  if (batch_ == B && shaped_for_ == &c) return;
  const long n = c.tokens(), D = c.dim, Bn = B * n;
  long max_rows = 0, max_cols = 0;
  for (int l = 0; l < c.depth; ++l) {
    const AttentionDims d = attention_dims(c, l, B);
    max_rows = std::max<long>(max_rows, d.in_rows());
    max_cols = std::max<long>(max_cols, d.out_cols());
  }
  const long sizes[] = {Bn * D, Bn * D, Bn * max_rows, Bn * max_cols, Bn * c.mlp_dim, B * (n - 1) * D, B * D,
                        long(max_threads()) * n * n};
  long total = 0;
  for (long s : sizes) total += s;
  check_fits(total, "the gradient buffers", B);
  buf_.assign(total, 0.0f);
  float* cur = buf_.data();
  float** views[] = {&dres, &dln, &dP, &dheads, &dhidden, &dpatch, &dcls, &scratch};
  for (int i = 0; i < 8; ++i) *views[i] = cur, cur += sizes[i];
  batch_ = B, shaped_for_ = &c;
}

void vit_backward(const ViT& m, const float* dlogits, const Activations& a, float* grads, BackwardBuffers& w) {
  const ViTConfig& c = m.cfg;
  const ParamLayout& L = m.layout;
  const int B = a.batch, n = c.tokens(), D = c.dim, Bn = B * n, M = c.mlp_dim;
  w.ensure(c, B);
  auto g = [&](size_t off) { return grads + off; };

  // Head and final norm: only the class tokens receive gradient.
  std::fill(w.dres, w.dres + long(Bn) * D, 0.0f);
  std::fill(w.dcls, w.dcls + long(B) * D, 0.0f);
  if (c.num_classes > 0)
    linear_backward(w.dcls, g(L.head_w), g(L.head_b), dlogits, a.cls_norm, m.p(L.head_w), B, D, c.num_classes);
  else
    std::copy(dlogits, dlogits + long(B) * D, w.dcls);
  const float* last = a.layer_input(c.depth);
  for (int b = 0; b < B; ++b)
    layernorm_backward(w.dres + long(b) * n * D, g(L.norm_w), g(L.norm_b), w.dcls + long(b) * D,
                       last + long(b) * n * D, a.cls_mean + b, a.cls_rstd + b, m.p(L.norm_w), 1, D);

  for (int l = c.depth - 1; l >= 0; --l) {
    const BlockOffsets& o = L.blocks[l];
    const Activations::Layer& A = a.layers[l];
    const AttentionDims d = attention_dims(c, l, B);
    // MLP: res_out = res_mid + fc2(gelu(fc1(norm2(res_mid)))); w.dres holds dL/d res_out.
    std::fill(w.dhidden, w.dhidden + long(Bn) * M, 0.0f);
    linear_backward(w.dhidden, g(o.fc2_w), g(o.fc2_b), w.dres, A.gelu, m.p(o.fc2_w), Bn, M, D);
    gelu_backward(w.dhidden, A.fc1, w.dhidden, long(Bn) * M);
    std::fill(w.dln, w.dln + long(Bn) * D, 0.0f);
    linear_backward(w.dln, g(o.fc1_w), g(o.fc1_b), w.dhidden, A.ln2, m.p(o.fc1_w), Bn, D, M);
    layernorm_backward(w.dres, g(o.ln2_w), g(o.ln2_b), w.dln, A.res_mid, A.ln2_mean, A.ln2_rstd, m.p(o.ln2_w), Bn, D);
    // Attention: res_mid = x + W_out heads + b_out; w.dres now holds dL/d res_mid.
    std::fill(w.dheads, w.dheads + long(Bn) * d.out_cols(), 0.0f);
    linear_backward(w.dheads, g(o.w_out), g(o.b_out), w.dres, A.heads, m.p(o.w_out), Bn, d.out_cols(), D);
    std::fill(w.dln, w.dln + long(Bn) * D, 0.0f);
    attention_backward(d, A.in_proj, A.ln1, A.att, w.dheads, w.dP, w.dln, w.scratch);
    linear_backward(w.dln, g(o.w_in), g(o.b_in), w.dP, A.ln1, m.p(o.w_in), Bn, D, d.in_rows());
    layernorm_backward(w.dres, g(o.ln1_w), g(o.ln1_b), w.dln, a.layer_input(l), A.ln1_mean, A.ln1_rstd, m.p(o.ln1_w),
                       Bn, D);
  }
  const PatchDims pd{B, c.in_chans, c.image_size, c.patch_size, D};
  patch_embed_backward(pd, w.dres, a.cols, w.dpatch, g(L.patch_w), g(L.patch_b), g(L.cls), g(L.pos));
}

}  // namespace vitqk
