#!/usr/bin/python3
"""Gradient fixtures for vitqk's backward pass, computed by PyTorch in float64.

Run with Debian's python (it has torch 1.13 and torchvision 0.14):

    /usr/bin/python3 tools/gen_grad_fixtures.py [--out tests/fixtures/grads]

This file also holds a plain PyTorch implementation of vitqk's ViT (``VitqkViT``) in every
attention form, with parameters named exactly as vitqk's layout (``src/model/params.h``);
``tools/torch_train.py`` trains that same model. Per layer and per pair (the README's "The math in one screen",
``src/ops/attention.h``; D = width, H = heads, dh = D / H, nn.Linear convention y = x W^T + b):

* qk factorized: ``attn.qkv`` [3D, D] (rows q | k | v, head h at rows h*dh..) or, when the ov
  pair is merged, ``attn.q`` and ``attn.k`` [D, D]; scores q_h . k_h / sqrt(dh).
* qk merged: ``attn.qk`` [H*D, D] + bias [H*D]; per head p_i = W_h x_i + u_h with W_h the
  head's [D, D] block of rows, and scores s_ij = p_i . x_j (x: the normed tokens, shared by all
  heads; no further scale: 1/sqrt(dh) is folded into W_h).
* ov factorized: values from ``attn.v`` (or the last third of ``qkv``), head outputs A_h V_h
  side by side [n, D], then ``attn.proj`` [D, D].
* ov merged: head outputs A_h X side by side [n, H*D], then ``attn.ov`` [D, H*D] + bias [D].

Each case is a tiny model (random non-zero biases everywhere) in one combination of forms;
per case ``<name>.safetensors`` holds the model in vitqk's own format (float32, tensors in
layout order, ``__metadata__`` {"format": "pt", "vitqk": <config_to_json>}) and
``<name>.io.safetensors`` holds ``pixel_values`` (F32), ``labels`` (F32 holding integers),
``logits`` (F64), ``loss`` (F64 [1]: mean cross-entropy with label_smoothing=0.1) and
``grad.<param>`` (F64) for every parameter: all computed in float64 from the float32-rounded
weights. ``manifest.json`` lists the cases and what the script measured about them.

Self-checks before anything is kept:
* the factorized PyTorch model reproduces torchvision's ``VisionTransformer`` on the same weights
  (float64 logits, ~1e-15), which anchors this reimplementation to real PyTorch code;
* merging the factorized model exactly (``merge_state``, the formulas of ``src/model/convert.h``)
  into each form gives the same logits (~1e-13): the merged forms mean what vitqk means;
* the autograd gradient agrees with central finite differences along random directions;
* every written file is re-read with gen_fixtures' strict safetensors reader and reproduces
  the stored logits, loss and gradients bit for bit.
The fixture weights of merged pairs are the exact merge plus a full-rank perturbation, so they
are generic merged models (as trained merged ones are), not disguised factorized ones.
The output is deterministic (fixed seeds, one thread, no timestamps).
"""

import argparse
import copy
import hashlib
import json
import math
import os
import sys
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

FACTORIZED, MERGED = "factorized", "merged"

# ----------------------------------------------------------------------------------------------
# vitqk's ViT in PyTorch
# ----------------------------------------------------------------------------------------------


def default_preprocess():
    """io::Preprocess's defaults (src/io/image.h)."""
    return OrderedDict(resize=256, resize_exact=False, crop=224, interpolation="bilinear",
                       mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])


def f32(v):
    """A float as vitqk stores it (float), printed as nlohmann::json prints it (as a double)."""
    return float(np.float32(v))


def config_json(cfg):
    """The JSON object config_to_json (src/model/config.cpp) writes, keys sorted as nlohmann's
    std::map-backed objects sort them. cfg: dict with image_size, patch_size, in_chans, dim,
    depth, heads, mlp_dim, num_classes, eps, qk, ov (lists of forms) and optionally preprocess
    and class_names."""
    p = cfg.get("preprocess") or default_preprocess()
    j = {"image_size": cfg["image_size"], "patch_size": cfg["patch_size"], "in_chans": cfg["in_chans"],
         "dim": cfg["dim"], "depth": cfg["depth"], "heads": cfg["heads"], "mlp_dim": cfg["mlp_dim"],
         "num_classes": cfg["num_classes"], "eps": f32(cfg["eps"]), "qk": list(cfg["qk"]), "ov": list(cfg["ov"]),
         "preprocess": {"resize": p["resize"], "resize_exact": p["resize_exact"], "crop": p["crop"],
                        "interpolation": p["interpolation"], "mean": [f32(v) for v in p["mean"]],
                        "std": [f32(v) for v in p["std"]]}}
    if cfg.get("class_names"):
        j["class_names"] = list(cfg["class_names"])
    return json.dumps(j, sort_keys=True, separators=(",", ":"))


def tokens(cfg):
    return 1 + (cfg["image_size"] // cfg["patch_size"]) ** 2


def layout(cfg):
    """[(name, shape)] in vitqk's ParamLayout order (src/model/params.cpp)."""
    D, H, M = cfg["dim"], cfg["heads"], cfg["mlp_dim"]
    L = [("cls_token", (1, 1, D)), ("pos_embed", (1, tokens(cfg), D)),
         ("patch_embed.proj.weight", (D, cfg["in_chans"], cfg["patch_size"], cfg["patch_size"])),
         ("patch_embed.proj.bias", (D,))]
    for l in range(cfg["depth"]):
        p = "blocks.%d." % l
        mqk, mov = cfg["qk"][l] == MERGED, cfg["ov"][l] == MERGED
        L += [(p + "norm1.weight", (D,)), (p + "norm1.bias", (D,))]
        if not mqk and not mov:
            L += [(p + "attn.qkv.weight", (3 * D, D)), (p + "attn.qkv.bias", (3 * D,))]
        else:
            pieces = [("attn.qk", H * D)] if mqk else [("attn.q", D), ("attn.k", D)]
            if not mov:
                pieces.append(("attn.v", D))
            L += [(p + n + ".weight", (r, D)) for n, r in pieces]
            L += [(p + n + ".bias", (r,)) for n, r in pieces]
        if mov:
            L += [(p + "attn.ov.weight", (D, H * D)), (p + "attn.ov.bias", (D,))]
        else:
            L += [(p + "attn.proj.weight", (D, D)), (p + "attn.proj.bias", (D,))]
        L += [(p + "norm2.weight", (D,)), (p + "norm2.bias", (D,)), (p + "mlp.fc1.weight", (M, D)),
              (p + "mlp.fc1.bias", (M,)), (p + "mlp.fc2.weight", (D, M)), (p + "mlp.fc2.bias", (D,))]
    L += [("norm.weight", (D,)), ("norm.bias", (D,))]
    if cfg["num_classes"] > 0:
        L += [("head.weight", (cfg["num_classes"], D)), ("head.bias", (cfg["num_classes"],))]
    return L


def decays(name, shape):
    """vitqk's (and timm's) AdamW weight-decay rule."""
    return len(shape) >= 2 and name not in ("cls_token", "pos_embed")


class Attention(nn.Module):
    def __init__(self, D, H, qk, ov):
        super().__init__()
        self.D, self.H, self.qk_form, self.ov_form = D, H, qk, ov
        if qk == FACTORIZED and ov == FACTORIZED:
            self.qkv = nn.Linear(D, 3 * D)
        else:
            if qk == MERGED:
                self.qk = nn.Linear(D, H * D)
            else:
                self.q, self.k = nn.Linear(D, D), nn.Linear(D, D)
            if ov == FACTORIZED:
                self.v = nn.Linear(D, D)
        if ov == MERGED:
            self.ov = nn.Linear(H * D, D)
        else:
            self.proj = nn.Linear(D, D)

    def forward(self, x):  # x: the normed tokens [B, n, D]
        B, n, D = x.shape
        H, dh = self.H, D // self.H
        heads = lambda t: t.view(B, n, H, -1).transpose(1, 2)  # [B, H, n, width]
        if hasattr(self, "qkv"):
            q, k, v = self.qkv(x).split(D, dim=-1)
        else:
            v = self.v(x) if self.ov_form == FACTORIZED else None
            if self.qk_form == FACTORIZED:
                q, k = self.q(x), self.k(x)
        xs = x.unsqueeze(1)  # [B, 1, n, D]: keys / values shared by every head (merged)
        if self.qk_form == MERGED:
            s = heads(self.qk(x)) @ xs.transpose(-2, -1)  # p_i . x_j, no scale
        else:
            s = (heads(q) @ heads(k).transpose(-2, -1)) * (1.0 / math.sqrt(dh))
        a = s.softmax(dim=-1)
        if self.ov_form == MERGED:
            o = (a @ xs).transpose(1, 2).reshape(B, n, H * D)  # A_h X side by side
            return self.ov(o)
        o = (a @ heads(v)).transpose(1, 2).reshape(B, n, D)
        return self.proj(o)


class Mlp(nn.Module):
    def __init__(self, D, M):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(D, M), nn.Linear(M, D)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))  # exact (erf) GELU


class Block(nn.Module):
    def __init__(self, D, H, M, eps, qk, ov):
        super().__init__()
        self.norm1 = nn.LayerNorm(D, eps=eps)
        self.attn = Attention(D, H, qk, ov)
        self.norm2 = nn.LayerNorm(D, eps=eps)
        self.mlp = Mlp(D, M)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, C, P, D):
        super().__init__()
        self.proj = nn.Conv2d(C, D, kernel_size=P, stride=P)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)  # [B, patches, D], row-major patch order


class VitqkViT(nn.Module):
    """vitqk's pre-norm ViT (src/model/vit.h); parameter names are vitqk's (timm's) names."""

    def __init__(self, cfg):
        super().__init__()
        D = cfg["dim"]
        self.cfg = cfg
        self.cls_token = nn.Parameter(torch.zeros(1, 1, D))
        self.pos_embed = nn.Parameter(torch.zeros(1, tokens(cfg), D))
        self.patch_embed = PatchEmbed(cfg["in_chans"], cfg["patch_size"], D)
        self.blocks = nn.ModuleList(
            Block(D, cfg["heads"], cfg["mlp_dim"], cfg["eps"], cfg["qk"][l], cfg["ov"][l]) for l in range(cfg["depth"]))
        self.norm = nn.LayerNorm(D, eps=cfg["eps"])
        self.head = nn.Linear(D, cfg["num_classes"]) if cfg["num_classes"] > 0 else nn.Identity()
        want = OrderedDict(layout(cfg))
        have = OrderedDict((k, tuple(v.shape)) for k, v in self.named_parameters())
        assert set(want) == set(have) and all(want[k] == have[k] for k in want), set(want) ^ set(have)

    def forward(self, x):
        t = self.patch_embed(x)
        t = torch.cat([self.cls_token.expand(t.shape[0], -1, -1), t], dim=1) + self.pos_embed
        for b in self.blocks:
            t = b(t)
        return self.head(self.norm(t)[:, 0])

    def layout_state(self):
        """OrderedDict name -> tensor in vitqk's layout order."""
        sd = dict(self.named_parameters())
        return OrderedDict((k, sd[k]) for k, _ in layout(self.cfg))


def merge_state(sd, cfg, qk, ov):
    """Exact conversion of a factorized state (vitqk names, every layer factorized) to the forms
    qk[l], ov[l] (src/model/convert.h): W_h = Wk_h^T Wq_h / sqrt(dh), u_h = Wk_h^T bq_h / sqrt(dh)
    (the key bias drops out of the softmax); M_h = W_O^h Wv_h side by side, b = b_O + W_O bv
    (softmax rows sum to one). Computed in float64; returns float64 tensors."""
    D, H = cfg["dim"], cfg["heads"]
    dh = D // H
    out = OrderedDict()
    for k, v in sd.items():
        if ".attn." not in k:
            out[k] = v.double().clone()
    for l in range(cfg["depth"]):
        p = "blocks.%d.attn." % l
        W, b = sd[p + "qkv.weight"].double(), sd[p + "qkv.bias"].double()
        Wq, Wk, Wv, bq, bk, bv = W[:D], W[D:2 * D], W[2 * D:], b[:D], b[D:2 * D], b[2 * D:]
        Wo, bo = sd[p + "proj.weight"].double(), sd[p + "proj.bias"].double()
        if qk[l] == FACTORIZED and ov[l] == FACTORIZED:
            out[p + "qkv.weight"], out[p + "qkv.bias"] = W.clone(), b.clone()
        else:
            if qk[l] == MERGED:
                rows = [slice(h * dh, (h + 1) * dh) for h in range(H)]
                out[p + "qk.weight"] = torch.cat([Wk[r].t() @ Wq[r] for r in rows]) / math.sqrt(dh)
                out[p + "qk.bias"] = torch.cat([Wk[r].t() @ bq[r] for r in rows]) / math.sqrt(dh)
            else:
                out[p + "q.weight"], out[p + "q.bias"] = Wq.clone(), bq.clone()
                out[p + "k.weight"], out[p + "k.bias"] = Wk.clone(), bk.clone()
            if ov[l] == FACTORIZED:
                out[p + "v.weight"], out[p + "v.bias"] = Wv.clone(), bv.clone()
        if ov[l] == MERGED:
            cols = [slice(h * dh, (h + 1) * dh) for h in range(H)]
            out[p + "ov.weight"] = torch.cat([Wo[:, c] @ Wv[c] for c in cols], dim=1)
            out[p + "ov.bias"] = bo + Wo @ bv
        else:
            out[p + "proj.weight"], out[p + "proj.bias"] = Wo.clone(), bo.clone()
    c2 = dict(cfg, qk=list(qk), ov=list(ov))
    return OrderedDict((k, out[k]) for k, _ in layout(c2))


def load_state(model, sd):
    with torch.no_grad():
        params = dict(model.named_parameters())
        assert set(params) == set(sd), set(params) ^ set(sd)
        for k, v in sd.items():
            params[k].copy_(v)
    return model


# ----------------------------------------------------------------------------------------------
# Fixture cases
# ----------------------------------------------------------------------------------------------

F_, M_ = FACTORIZED, MERGED
CASES = [
    dict(name="ff_h3", qk=[F_, F_], ov=[F_, F_], image_size=12, patch_size=4, in_chans=3, dim=12, heads=3,
         num_classes=5, seed=11),
    dict(name="mf_h2", qk=[M_, M_], ov=[F_, F_], image_size=12, patch_size=4, in_chans=1, dim=16, heads=2,
         num_classes=7, seed=22),
    dict(name="fm_h3", qk=[F_, F_], ov=[M_, M_], image_size=8, patch_size=4, in_chans=3, dim=12, heads=3,
         num_classes=6, seed=33),
    dict(name="mm_h2", qk=[M_, M_], ov=[M_, M_], image_size=12, patch_size=4, in_chans=3, dim=16, heads=2,
         num_classes=5, seed=44),
    dict(name="mm_h1", qk=[M_, M_], ov=[M_, M_], image_size=8, patch_size=4, in_chans=1, dim=16, heads=1,
         num_classes=7, seed=55),
    # Per-layer forms: every pair of forms meets a differently shaped neighbour.
    dict(name="mixed_h2", qk=[M_, F_], ov=[F_, M_], image_size=12, patch_size=4, in_chans=3, dim=12, heads=2,
         num_classes=6, seed=66),
]
for _c in CASES:
    _c.update(depth=2, mlp_dim=2 * _c["dim"], eps=1e-6, batch=3)

LABEL_SMOOTHING = 0.1


def fd_check(model, x, y, grads, gen, count=3):
    """Central differences of the float64 loss along random directions vs the autograd gradient."""
    params = OrderedDict(model.named_parameters())
    worst = 0.0
    for _ in range(count):
        dirs = OrderedDict((k, torch.randn(v.shape, generator=gen, dtype=torch.float64)) for k, v in params.items())
        norm = math.sqrt(sum((d ** 2).sum().item() for d in dirs.values()))
        dirs = OrderedDict((k, d / norm) for k, d in dirs.items())  # a unit step in parameter space
        analytic = sum((grads[k] * dirs[k]).sum().item() for k in params)
        eps = 1e-6  # truncation error ~eps^2, rounding ~1e-16 / eps: both far below the 1e-6 asked
        vals = []
        for sgn in (1, -1):
            m = copy.deepcopy(model)
            with torch.no_grad():
                for k, p in m.named_parameters():
                    p.add_(sgn * eps * dirs[k])
                vals.append(F.cross_entropy(m(x), y, label_smoothing=LABEL_SMOOTHING).item())
        numeric = (vals[0] - vals[1]) / (2 * eps)
        worst = max(worst, abs(numeric - analytic) / max(1e-12, abs(analytic)))
    return worst


def loss_and_grads(model, x, y):
    model.zero_grad(set_to_none=True)
    logits = model(x)
    loss = F.cross_entropy(logits, y, label_smoothing=LABEL_SMOOTHING)
    loss.backward()
    grads = OrderedDict((k, p.grad.detach().clone()) for k, p in model.layout_state().items())
    return logits.detach(), loss.detach(), grads


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "tests", "fixtures", "grads"))
    args = ap.parse_args()
    out_dir = os.path.normpath(args.out)
    os.makedirs(out_dir, exist_ok=True)

    sys.path.insert(0, here)
    import gen_fixtures as gf  # torchvision model builder, randomiser, safetensors writer / reader

    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)

    manifest, total = [], 0
    for case in CASES:
        cfg = dict(case)
        name, D, H, depth = cfg["name"], cfg["dim"], cfg["heads"], cfg["depth"]
        fact_cfg = dict(cfg, qk=[F_] * depth, ov=[F_] * depth)

        # 1. A torchvision ViT with gen_fixtures' non-zero random weights; the same weights in
        #    vitqk's names drive the factorized PyTorch model here: logits must agree.
        gen = torch.Generator().manual_seed(cfg["seed"])
        tv = gf.build_model(cfg)
        gf.randomize(tv, cfg, gen)
        x = gf.make_pixels(cfg, torch.Generator().manual_seed(cfg["seed"] + 1))
        y = torch.randint(0, cfg["num_classes"], (cfg["batch"],), generator=gen)
        tv_sd = OrderedDict((k, v.clone()) for k, v in tv.state_dict().items())
        fact_sd = gf.rename(tv_sd, "timm", depth, D)
        fact = load_state(VitqkViT(fact_cfg).double(), OrderedDict((k, v.double()) for k, v in fact_sd.items()))
        tv_logits, path, _ = gf.run(copy.deepcopy(tv).double().eval(), x.double(), fused_allowed=False)
        assert path.startswith("unfused")
        with torch.no_grad():
            fact_logits = fact(x.double())
        tv_err = (fact_logits - tv_logits).abs().max().item()
        assert tv_err < 1e-12, (name, "factorized model vs torchvision", tv_err)

        # 2. The exact merge into this case's forms computes the same function.
        merged_sd = merge_state(fact_sd, fact_cfg, cfg["qk"], cfg["ov"])
        merged = load_state(VitqkViT(cfg).double(), merged_sd)
        with torch.no_grad():
            merge_err = (merged(x.double()) - tv_logits).abs().max().item()
        assert merge_err < 1e-11, (name, "exact merge vs torchvision", merge_err)

        # 3. The fixture's weights: merged matrices perturbed to full rank (noise of the size of
        #    the product's entries; biases too), then rounded to float32 for storage.
        pert = torch.Generator().manual_seed(cfg["seed"] + 2)
        stored = OrderedDict()
        for k, v in merged_sd.items():
            if k.endswith(("attn.qk.weight", "attn.ov.weight", "attn.qk.bias", "attn.ov.bias")):
                v = v + 0.5 * v.std() * torch.randn(v.shape, generator=pert, dtype=torch.float64)
            stored[k] = v.float()
        for k, v in stored.items():
            assert torch.count_nonzero(v).item() == v.numel(), "zero entry in " + k
        rank = []
        for l in range(depth):
            for pair, key in (("qk", "attn.qk.weight"), ("ov", "attn.ov.weight")):
                k = "blocks.%d.%s" % (l, key)
                if k in stored:
                    W = stored[k].double()
                    blocks = W.split(D, dim=0) if pair == "qk" else W.split(D, dim=1)
                    rank.append(min(torch.linalg.matrix_rank(b).item() for b in blocks))
        assert all(r == D for r in rank), (name, "merged blocks not full rank", rank)

        # 4. float64 references from the float32-rounded weights.
        model = load_state(VitqkViT(cfg).double(), OrderedDict((k, v.double()) for k, v in stored.items()))
        logits, loss, grads = loss_and_grads(model, x.double(), y)
        fd_err = fd_check(model, x.double(), y, grads, torch.Generator().manual_seed(cfg["seed"] + 3))
        assert fd_err < 1e-6, (name, "finite differences", fd_err)
        # For the tolerance of the C++ test: PyTorch's own float32 gradients vs float64.
        m32 = load_state(VitqkViT(cfg), stored)
        logits32, loss32, grads32 = loss_and_grads(m32, x, y)
        f32_logits = (logits32.double() - logits).abs().max().item() / logits.abs().max().item()
        f32_grads = max(((grads32[k].double() - g).abs().max() / g.abs().max().clamp_min(1e-30)).item()
                        for k, g in grads.items() if g.abs().max().item() > 1e-12)
        lmax = logits.abs().max().item()
        assert 0.3 < lmax < 20, (name, lmax)

        # 5. Write, then re-read and compare bit for bit.
        file, io = name + ".safetensors", name + ".io.safetensors"
        meta = OrderedDict([("format", "pt"), ("vitqk", config_json(cfg))])
        gf.write_safetensors(os.path.join(out_dir, file), stored, meta)
        io_t = OrderedDict([("pixel_values", x), ("labels", y.float()), ("logits", logits), ("loss", loss.reshape(1))])
        for k, g in grads.items():
            io_t["grad." + k] = g
        io_meta = OrderedDict([("model", file), ("loss", "mean cross_entropy, label_smoothing=%g" % LABEL_SMOOTHING),
                               ("reference", "float64 autograd from the float32 weights")])
        gf.write_safetensors(os.path.join(out_dir, io), io_t, io_meta)
        m_back, T = gf.read_safetensors(os.path.join(out_dir, file))
        assert m_back == meta and list(T) == [k for k, _ in layout(cfg)]
        assert all(dt == "F32" and np.array_equal(a_, stored[k].double().numpy()) for k, (dt, a_) in T.items())
        _, IO = gf.read_safetensors(os.path.join(out_dir, io))
        assert list(IO) == list(io_t)
        for k, t in io_t.items():
            assert IO[k][0] == ("F32" if k in ("pixel_values", "labels") else "F64"), k
            assert np.array_equal(IO[k][1], t.double().numpy()), k

        size = sum(os.path.getsize(os.path.join(out_dir, f)) for f in (file, io))
        total += size
        gnorm = math.sqrt(sum((g ** 2).sum().item() for g in grads.values()))
        entry = OrderedDict(name=name, file=file, io=io)
        for k in ["image_size", "patch_size", "in_chans", "dim", "depth", "heads", "mlp_dim", "num_classes", "eps",
                  "qk", "ov", "batch"]:
            entry[k] = cfg[k]
        entry.update(tokens=tokens(cfg), params=sum(v.numel() for v in stored.values()),
                     loss=loss.item(), logits_absmax=lmax, grad_norm=gnorm,
                     torchvision_vs_factorized=tv_err, exact_merge_vs_torchvision=merge_err,
                     finite_difference_rel_err=fd_err, torch_f32_logits_rel_err=f32_logits,
                     torch_f32_grad_rel_err=f32_grads, merged_block_min_rank=rank)
        manifest.append(entry)
        print("%-9s qk=%-23s ov=%-23s n=%-2d D=%-2d H=%d params=%-5d loss=%.4f |g|=%.3f  tv=%.1e merge=%.1e "
              "fd=%.1e  torch f32: logits %.1e grads %.1e  %d bytes" % (
                  name, ",".join(cfg["qk"]), ",".join(cfg["ov"]), tokens(cfg), D, H, entry["params"], loss.item(),
                  gnorm, tv_err, merge_err, fd_err, f32_logits, f32_grads, size))

    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    total += os.path.getsize(os.path.join(out_dir, "manifest.json"))
    print("total %d bytes in %s" % (total, out_dir))
    assert total < 500_000, total
    h = hashlib.sha256()
    for e in manifest:
        for fn in (e["file"], e["io"]):
            with open(os.path.join(out_dir, fn), "rb") as f:
                h.update(f.read())
    print("sha256 of all fixture files: " + h.hexdigest())


if __name__ == "__main__":
    main()
