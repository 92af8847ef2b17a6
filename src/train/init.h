#pragma once
// Initialisation as timm's ViT, in either of its schemes (timm's weight_init argument):
//   timm (''):  weights (linear, patch, pos_embed) normal with std 0.02 (timm's trunc_normal_
//               cuts at +-2 absolute, which never bites at std 0.02), biases zero.
//   jax:        the original ViT's: linear weights Xavier-uniform (qkv as one [3D, D] matrix),
//               the head zero, the patch projection LeCun-normal (truncated at 2 sigma), MLP
//               biases normal 1e-6, other biases zero, pos_embed normal 0.02.
// Both: norms one/zero, cls_token normal 1e-6.
//
// Merged layers start one of two ways (--merged-init):
//   product: initialise the factorized layer, then merge it exactly: the same function as
//            the factorized model at step 0, rank d_h per head.
//   random:  a full-rank matrix with i.i.d. entries of the product's variance: for
//            A_h = Wq_h^T Wk_h / sqrt(d_h) with entries of std s, entries of A have std s^2;
//            for M_h = W_O^h W_V^h, std sqrt(d_h) s_O s_V. Scores start with the same variance.
#include <cstdint>
#include <string>

#include "core/rng.h"
#include "model/vit.h"

namespace vitqk {

enum class MergedInit { Product, Random };
MergedInit parse_merged_init(const std::string& s);
enum class WeightInit { Timm, Jax };
WeightInit parse_weight_init(const std::string& s);

void init_params(ViT& m, uint64_t seed, MergedInit merged_init = MergedInit::Product,
                 WeightInit weight_init = WeightInit::Timm);

// One parameter of a factorized model, as init_params sets it when called for each parameter
// in layout order with Rng(seed): lets a model be initialised one parameter at a time.
void init_param(const ParamInfo& p, float* v, Rng& rng, WeightInit weight_init = WeightInit::Timm);

}  // namespace vitqk
