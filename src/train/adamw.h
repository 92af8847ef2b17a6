#pragma once
// AdamW (Loshchilov & Hutter) with decoupled weight decay on matrices only (timm's
// convention: no decay on biases, norms, cls_token, pos_embed), global gradient-norm
// clipping, and linear warm-up followed by cosine decay.
#include <vector>

#include "model/params.h"

namespace vitqk {

struct AdamWConfig {
  float lr = 2e-3f, min_lr = 1e-5f, wd = 0.05f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
  float clip = 1.0f;  // max global gradient norm; 0: no clipping
  long warmup_steps = 0, total_steps = 1;
};

// Learning rate for (0-based) step: linear warm-up from lr/warmup to lr, then cosine to min_lr.
float lr_at(const AdamWConfig& c, long step);

// Scales grads so their global L2 norm is at most c.clip; returns the norm before clipping.
double clip_grad_norm(float* grads, size_t n, float clip);

// One step (step is 1-based for bias correction). m and v are the moment buffers.
void adamw_step(const ParamLayout& layout, float* params, const float* grads, float* m, float* v, long step, float lr,
                const AdamWConfig& c);

}  // namespace vitqk
