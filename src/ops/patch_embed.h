#pragma once
// Conv patch embedding (kernel = stride = patch) as im2col + GEMM, then the class token and
// learned position embedding: x[b, 0] = cls + pos[0], x[b, 1 + t] = W patch_t + bias + pos[1 + t].
#include "ops/linear.h"

namespace vitqk {

struct PatchDims {
  int B, C, image, patch, D;
  int grid() const { return image / patch; }
  int patches() const { return grid() * grid(); }
  int patch_dim() const { return C * patch * patch; }
};

// cols: [B * patches, C*P*P] in the (c, ky, kx) order of the conv weight [D, C, P, P].
void im2col(const PatchDims& d, const float* pixels, float* cols);
// proj: the conv as a linear layer [D, C*P*P]; patch_out: [B * patches, D] scratch;
// x: [B, 1 + patches, D].
void patch_embed_forward(const PatchDims& d, const float* pixels, const LinearWeights& proj, const float* cls,
                         const float* pos, float* cols, float* patch_out, float* x);
// Parameter gradients from dx [B, 1 + patches, D] (accumulated); the pixels need none.
// dpatch: [B * patches, D] scratch.
void patch_embed_backward(const PatchDims& d, const float* dx, const float* cols, float* dpatch, float* dw,
                          float* dbias, float* dcls, float* dpos);

}  // namespace vitqk
