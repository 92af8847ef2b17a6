#!/usr/bin/python3
"""Reference fixtures for vitqk's forward-pass tests, computed by PyTorch.

Run with Debian's python (it has torch 1.13 and torchvision 0.14):

    /usr/bin/python3 tools/gen_fixtures.py [--out tests/fixtures/models]

Every model is a real ``torchvision.models.vision_transformer.VisionTransformer`` built with
small sizes and re-initialised with fixed seeds (non-zero biases everywhere; weights scaled so
that activations, attention patterns and logits are of order one). Its ``state_dict()`` is
written as safetensors (by hand: there is no safetensors package here) in one of three
namings, obtained by renaming torchvision's tensors:

* ``torchvision``: the state dict as is;
* ``timm``: ``cls_token, pos_embed, patch_embed.proj.*, blocks.N.{norm1,attn.qkv,attn.proj,
  norm2,mlp.fc1,mlp.fc2}.*, norm.*, head.*`` (``qkv`` rows are ``[q | k | v]``, exactly
  torchvision's ``in_proj_weight``);
* ``hf``: ``ViTForImageClassification``: ``vit.embeddings.*``, ``vit.encoder.layer.N.*`` with
  ``in_proj_weight`` split into ``query/key/value``, ``vit.layernorm.*``, ``classifier.*``.

For each model ``<name>.io.safetensors`` holds ``pixel_values`` (float32 [B,C,H,W]),
``logits`` (float64, the model run in float64, eval mode, PyTorch's unfused attention) and
``logits_f32`` (float32, the model run in float32 under ``torch.no_grad()``, which takes
PyTorch 1.13's fused ``_native_multi_head_attention`` when the head count is even).

Self-checks before anything is kept: every file is re-read with an independent strict
safetensors reader, mapped back to torchvision names, loaded with ``load_state_dict(strict=
True)`` into a fresh model, and must reproduce the float64 logits bit for bit; an independent
numpy forward pass written directly against each naming's tensor names must agree with them
to ~1e-12; BF16/F16 rounding is checked against a numpy round-to-nearest-even. The output is
deterministic (fixed seeds, no timestamps): running twice gives identical bytes.
"""

import argparse
import copy
import functools
import hashlib
import json
import math
import os
import struct
import sys
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
from torchvision.models.vision_transformer import VisionTransformer

torch.use_deterministic_algorithms(True)
torch.set_num_threads(1)  # summation order independent of the machine's core count

# ----------------------------------------------------------------------------------------------
# Models
# ----------------------------------------------------------------------------------------------

MODELS = [
    # name, naming, dtype, image, patch, in_chans, dim, depth, heads, mlp, classes, eps, batch, seed
    dict(name="timm_a", naming="timm", dtype="F32", image_size=32, patch_size=8, in_chans=3, dim=48,
         depth=2, heads=3, mlp_dim=96, num_classes=10, eps=1e-6, batch=2, seed=101),
    dict(name="timm_b", naming="timm", dtype="F32", image_size=24, patch_size=4, in_chans=3, dim=40,
         depth=3, heads=5, mlp_dim=100, num_classes=7, eps=1e-6, batch=3, seed=202),
    dict(name="timm_gray", naming="timm", dtype="F32", image_size=28, patch_size=4, in_chans=1, dim=32,
         depth=2, heads=4, mlp_dim=64, num_classes=10, eps=1e-6, batch=3, seed=303),
    dict(name="hf_a", naming="hf", dtype="F32", image_size=32, patch_size=16, in_chans=3, dim=64,
         depth=2, heads=4, mlp_dim=128, num_classes=5, eps=1e-12, batch=2, seed=404),
    dict(name="tv_a", naming="torchvision", dtype="F32", image_size=32, patch_size=8, in_chans=3, dim=32,
         depth=2, heads=2, mlp_dim=64, num_classes=10, eps=1e-6, batch=2, seed=505),
    dict(name="timm_a_bf16", base="timm_a", naming="timm", dtype="BF16"),
    dict(name="hf_a_f16", base="hf_a", naming="hf", dtype="F16"),
    dict(name="tv_single", naming="torchvision", dtype="F32", image_size=16, patch_size=4, in_chans=3, dim=24,
         depth=2, heads=1, mlp_dim=48, num_classes=3, eps=1e-6, batch=3, seed=606),
]

CONFIG_KEYS = ["image_size", "patch_size", "in_chans", "dim", "depth", "heads", "mlp_dim", "num_classes",
               "eps", "batch", "seed"]

# Writers of timm / HF checkpoints add {"format": "pt"}; torchvision ships .pth files, so its
# safetensors here carry no metadata at all (the reader must cope with both).
METADATA = {"timm": {"format": "pt"}, "hf": {"format": "pt"}, "torchvision": None}


def build_model(cfg):
    m = VisionTransformer(
        image_size=cfg["image_size"], patch_size=cfg["patch_size"], num_layers=cfg["depth"],
        num_heads=cfg["heads"], hidden_dim=cfg["dim"], mlp_dim=cfg["mlp_dim"],
        num_classes=cfg["num_classes"], norm_layer=functools.partial(nn.LayerNorm, eps=cfg["eps"]))
    if cfg["in_chans"] != 3:
        # Replacing an existing child keeps its place in the state dict order.
        m.conv_proj = nn.Conv2d(cfg["in_chans"], cfg["dim"], kernel_size=cfg["patch_size"],
                                stride=cfg["patch_size"])
    return m.eval()


def randomize(model, cfg, gen):
    """Non-zero everything, scaled for order-one activations and peaked attention."""
    D = cfg["dim"]

    def normal(shape, std, mean=0.0):
        return torch.randn(*shape, generator=gen, dtype=torch.float64).mul(std).add(mean).float()

    with torch.no_grad():
        for name, p in model.named_parameters():
            shape = tuple(p.shape)
            if name == "class_token":
                v = normal(shape, 1.0)
            elif name.endswith("pos_embedding"):
                v = normal(shape, 0.5)
            elif name == "conv_proj.weight":
                fan_in = shape[1] * shape[2] * shape[3]
                v = normal(shape, 1.0 / math.sqrt(fan_in))
            elif ".ln_" in name or name.startswith("encoder.ln."):
                v = normal(shape, 0.2, 1.0) if name.endswith("weight") else normal(shape, 0.2)
            elif name.endswith("in_proj_weight"):
                # q and k larger than v: scores of standard deviation ~2, attention far from uniform.
                v = torch.cat([normal((D, D), 1.5 / math.sqrt(D)), normal((D, D), 1.5 / math.sqrt(D)),
                               normal((D, D), 1.0 / math.sqrt(D))])
            elif name.endswith("weight"):  # out_proj, mlp.0, mlp.3, heads.head
                v = normal(shape, 1.0 / math.sqrt(shape[1]))
            elif name.endswith("bias"):
                v = normal(shape, 0.3)
            else:
                raise AssertionError("unexpected parameter " + name)
            assert v.shape == p.shape, name
            p.copy_(v)
    for name, t in model.state_dict().items():
        assert torch.count_nonzero(t).item() == t.numel(), "zero entry in " + name


def make_pixels(cfg, gen):
    """Image-like inputs, normalised as usual: a smooth random field plus noise in [0,1]."""
    B, C, S = cfg["batch"], cfg["in_chans"], cfg["image_size"]
    low = torch.rand(B, C, 4, 4, generator=gen, dtype=torch.float64)
    img = nn.functional.interpolate(low, size=(S, S), mode="bilinear", align_corners=False)
    img = (img + 0.15 * torch.randn(B, C, S, S, generator=gen, dtype=torch.float64)).clamp(0, 1)
    if C == 3:
        mean = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225], dtype=torch.float64).view(1, 3, 1, 1)
    else:  # Fashion-MNIST statistics
        mean, std = 0.2860, 0.3530
    return ((img - mean) / std).float().contiguous()


# ----------------------------------------------------------------------------------------------
# Naming: (ecosystem name, torchvision name, row slice of the torchvision tensor or None), in the
# order that ecosystem's state_dict() lists its tensors.
# ----------------------------------------------------------------------------------------------

def naming_table(naming, tv_keys, depth, D):
    if naming == "torchvision":
        return [(k, k, None) for k in tv_keys]
    T = []

    def wb(eco, tv):
        T.append((eco + ".weight", tv + ".weight", None))
        T.append((eco + ".bias", tv + ".bias", None))

    if naming == "timm":
        T.append(("cls_token", "class_token", None))
        T.append(("pos_embed", "encoder.pos_embedding", None))
        wb("patch_embed.proj", "conv_proj")
        for i in range(depth):
            b, L = "blocks.%d." % i, "encoder.layers.encoder_layer_%d." % i
            wb(b + "norm1", L + "ln_1")
            T.append((b + "attn.qkv.weight", L + "self_attention.in_proj_weight", None))
            T.append((b + "attn.qkv.bias", L + "self_attention.in_proj_bias", None))
            wb(b + "attn.proj", L + "self_attention.out_proj")
            wb(b + "norm2", L + "ln_2")
            wb(b + "mlp.fc1", L + "mlp.0")
            wb(b + "mlp.fc2", L + "mlp.3")
        wb("norm", "encoder.ln")
        wb("head", "heads.head")
    elif naming == "hf":
        T.append(("vit.embeddings.cls_token", "class_token", None))
        T.append(("vit.embeddings.position_embeddings", "encoder.pos_embedding", None))
        wb("vit.embeddings.patch_embeddings.projection", "conv_proj")
        for i in range(depth):
            h, L = "vit.encoder.layer.%d." % i, "encoder.layers.encoder_layer_%d." % i
            for j, part in enumerate(["query", "key", "value"]):
                rows = slice(j * D, (j + 1) * D)
                T.append((h + "attention.attention.%s.weight" % part, L + "self_attention.in_proj_weight", rows))
                T.append((h + "attention.attention.%s.bias" % part, L + "self_attention.in_proj_bias", rows))
            wb(h + "attention.output.dense", L + "self_attention.out_proj")
            wb(h + "intermediate.dense", L + "mlp.0")
            wb(h + "output.dense", L + "mlp.3")
            wb(h + "layernorm_before", L + "ln_1")
            wb(h + "layernorm_after", L + "ln_2")
        wb("vit.layernorm", "encoder.ln")
        wb("classifier", "heads.head")
    else:
        raise ValueError(naming)
    # Bijective: every torchvision tensor used, ecosystem names unique, slices tile the rows.
    assert len({e for e, _, _ in T}) == len(T)
    assert {t for _, t, _ in T} == set(tv_keys), set(tv_keys) ^ {t for _, t, _ in T}
    return T


def rename(tv_sd, naming, depth, D):
    T = naming_table(naming, list(tv_sd.keys()), depth, D)
    out = OrderedDict()
    for eco, tv, rows in T:
        t = tv_sd[tv]
        out[eco] = (t if rows is None else t[rows]).clone().contiguous()
    return out


def unrename(eco_sd, naming, tv_keys, depth, D):
    T = naming_table(naming, tv_keys, depth, D)
    assert set(eco_sd.keys()) == {e for e, _, _ in T}, set(eco_sd.keys()) ^ {e for e, _, _ in T}
    parts = OrderedDict((k, []) for k in tv_keys)
    for eco, tv, rows in T:
        parts[tv].append((0 if rows is None else rows.start, rows, eco_sd[eco]))
    out = OrderedDict()
    for tv, ps in parts.items():
        ps.sort(key=lambda p: p[0])
        if len(ps) == 1:
            assert ps[0][1] is None
            out[tv] = ps[0][2]
        else:
            pos = 0
            for start, rows, _ in ps:
                assert rows.start == pos
                pos = rows.stop
            out[tv] = torch.cat([p[2] for p in ps], dim=0)
    return out


# ----------------------------------------------------------------------------------------------
# safetensors, by hand
# ----------------------------------------------------------------------------------------------

DTYPE_SIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2}


def tensor_bytes(t):
    t = t.detach().contiguous().cpu()
    if t.dtype == torch.float64:
        return "F64", t.numpy().astype("<f8").tobytes()
    if t.dtype == torch.float32:
        return "F32", t.numpy().astype("<f4").tobytes()
    if t.dtype == torch.float16:
        return "F16", t.numpy().astype("<f2").tobytes()
    if t.dtype == torch.bfloat16:
        return "BF16", t.view(torch.int16).numpy().astype("<i2").tobytes()
    raise TypeError(t.dtype)


def write_safetensors(path, tensors, metadata=None):
    header, blobs, off = OrderedDict(), [], 0
    if metadata is not None:
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())
        header["__metadata__"] = OrderedDict(metadata)
    for name, t in tensors.items():
        dt, b = tensor_bytes(t)
        header[name] = OrderedDict([("dtype", dt), ("shape", list(t.shape)), ("data_offsets", [off, off + len(b)])])
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((-len(h)) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def read_safetensors(path):
    """Strict reader, independent of the writer: returns (metadata, OrderedDict name -> (dtype, np.float64 array))."""
    with open(path, "rb") as f:
        raw = f.read()
    assert len(raw) >= 8
    (n,) = struct.unpack("<Q", raw[:8])
    assert n <= 100_000_000 and 8 + n <= len(raw) and n % 8 == 0
    header = json.loads(raw[8:8 + n].decode("utf-8"), object_pairs_hook=OrderedDict)
    buf = raw[8 + n:]
    meta = header.pop("__metadata__", None)
    if meta is not None:
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items())
    spans, out = [], OrderedDict()
    for name, info in header.items():
        assert set(info) == {"dtype", "shape", "data_offsets"}, info
        dt, shape, (b, e) = info["dtype"], info["shape"], info["data_offsets"]
        numel = 1
        for s in shape:
            assert isinstance(s, int) and s >= 0
            numel *= s
        assert 0 <= b <= e <= len(buf) and e - b == numel * DTYPE_SIZE[dt], name
        spans.append((b, e))
        data = buf[b:e]
        if dt == "F64":
            a = np.frombuffer(data, "<f8")
        elif dt == "F32":
            a = np.frombuffer(data, "<f4").astype(np.float64)
        elif dt == "F16":
            a = np.frombuffer(data, "<f2").astype(np.float64)
        elif dt == "BF16":
            a = (np.frombuffer(data, "<u2").astype(np.uint32) << 16).view(np.float32).astype(np.float64)
        out[name] = (dt, a.reshape(shape).copy())
    spans.sort()
    pos = 0
    for b, e in spans:  # tiles the buffer exactly: no gaps, no overlaps, ends at end of file
        assert b == pos, (path, b, pos)
        pos = e
    assert pos == len(buf), (path, pos, len(buf))
    return meta, out


# ----------------------------------------------------------------------------------------------
# Forward passes
# ----------------------------------------------------------------------------------------------

class PathProbe:
    """Counts calls of PyTorch 1.13's fused attention kernel while active."""

    def __init__(self):
        self.calls = 0

    def __enter__(self):
        self.orig = torch._native_multi_head_attention

        def wrapped(*a, **k):
            self.calls += 1
            return self.orig(*a, **k)

        torch._native_multi_head_attention = wrapped
        return self

    def __exit__(self, *exc):
        torch._native_multi_head_attention = self.orig


def run(model, x, fused_allowed):
    """Logits and which attention path ran. With grad enabled (and parameters requiring grad)
    PyTorch 1.13 never takes the fused path; under no_grad it does when it can."""
    with PathProbe() as probe:
        if fused_allowed:
            with torch.no_grad():
                y = model(x)
        else:
            with torch.enable_grad():
                y = model(x).detach()
    path = "fused _native_multi_head_attention" if probe.calls else "unfused multi_head_attention_forward"
    return y, path, probe.calls


def np_layernorm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


_erf = np.vectorize(math.erf, otypes=[np.float64])


def np_gelu(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def np_params(naming, T, depth):
    """Per-naming accessors, written directly against each ecosystem's names (independently of
    naming_table) so a mapping mistake there cannot hide here."""
    P = {}
    if naming == "timm":
        P["cls"], P["pos"] = T["cls_token"], T["pos_embed"]
        P["pw"], P["pb"] = T["patch_embed.proj.weight"], T["patch_embed.proj.bias"]
        P["layers"] = []
        for i in range(depth):
            g = lambda s: T["blocks.%d.%s" % (i, s)]
            qkv_w, qkv_b = g("attn.qkv.weight"), g("attn.qkv.bias")
            D = qkv_w.shape[1]
            P["layers"].append(dict(
                ln1=(g("norm1.weight"), g("norm1.bias")), ln2=(g("norm2.weight"), g("norm2.bias")),
                q=(qkv_w[:D], qkv_b[:D]), k=(qkv_w[D:2 * D], qkv_b[D:2 * D]), v=(qkv_w[2 * D:], qkv_b[2 * D:]),
                o=(g("attn.proj.weight"), g("attn.proj.bias")),
                fc1=(g("mlp.fc1.weight"), g("mlp.fc1.bias")), fc2=(g("mlp.fc2.weight"), g("mlp.fc2.bias"))))
        P["norm"], P["head"] = (T["norm.weight"], T["norm.bias"]), (T["head.weight"], T["head.bias"])
    elif naming == "hf":
        P["cls"], P["pos"] = T["vit.embeddings.cls_token"], T["vit.embeddings.position_embeddings"]
        P["pw"] = T["vit.embeddings.patch_embeddings.projection.weight"]
        P["pb"] = T["vit.embeddings.patch_embeddings.projection.bias"]
        P["layers"] = []
        for i in range(depth):
            g = lambda s: (T["vit.encoder.layer.%d.%s.weight" % (i, s)], T["vit.encoder.layer.%d.%s.bias" % (i, s)])
            P["layers"].append(dict(
                ln1=g("layernorm_before"), ln2=g("layernorm_after"),
                q=g("attention.attention.query"), k=g("attention.attention.key"), v=g("attention.attention.value"),
                o=g("attention.output.dense"), fc1=g("intermediate.dense"), fc2=g("output.dense")))
        P["norm"] = (T["vit.layernorm.weight"], T["vit.layernorm.bias"])
        P["head"] = (T["classifier.weight"], T["classifier.bias"])
    elif naming == "torchvision":
        P["cls"], P["pos"] = T["class_token"], T["encoder.pos_embedding"]
        P["pw"], P["pb"] = T["conv_proj.weight"], T["conv_proj.bias"]
        P["layers"] = []
        for i in range(depth):
            g = lambda s: T["encoder.layers.encoder_layer_%d.%s" % (i, s)]
            w, b = g("self_attention.in_proj_weight"), g("self_attention.in_proj_bias")
            D = w.shape[1]
            P["layers"].append(dict(
                ln1=(g("ln_1.weight"), g("ln_1.bias")), ln2=(g("ln_2.weight"), g("ln_2.bias")),
                q=(w[:D], b[:D]), k=(w[D:2 * D], b[D:2 * D]), v=(w[2 * D:], b[2 * D:]),
                o=(g("self_attention.out_proj.weight"), g("self_attention.out_proj.bias")),
                fc1=(g("mlp.0.weight"), g("mlp.0.bias")), fc2=(g("mlp.3.weight"), g("mlp.3.bias"))))
        P["norm"] = (T["encoder.ln.weight"], T["encoder.ln.bias"])
        P["head"] = (T["heads.head.weight"], T["heads.head.bias"])
    return P


def np_forward(naming, T, cfg, x):
    """float64 ViT forward from the file's own tensors; returns logits and attention statistics."""
    P = np_params(naming, T, cfg["depth"])
    B, C, S, _ = x.shape
    p, D, H, eps = cfg["patch_size"], cfg["dim"], cfg["heads"], cfg["eps"]
    g = S // p
    patches = x.reshape(B, C, g, p, g, p).transpose(0, 2, 4, 1, 3, 5).reshape(B, g * g, C * p * p)
    tok = patches @ P["pw"].reshape(D, -1).T + P["pb"]
    h = np.concatenate([np.broadcast_to(P["cls"].reshape(1, 1, D), (B, 1, D)), tok], axis=1) + P["pos"]
    n, hd = h.shape[1], D // H
    ent, pmax = [], []
    lin = lambda a, wb: a @ wb[0].T + wb[1]
    for L in P["layers"]:
        a = np_layernorm(h, *L["ln1"], eps)
        split = lambda t: t.reshape(B, n, H, hd).transpose(0, 2, 1, 3)
        q, k, v = split(lin(a, L["q"])), split(lin(a, L["k"])), split(lin(a, L["v"]))
        s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(hd)
        s = np.exp(s - s.max(-1, keepdims=True))
        att = s / s.sum(-1, keepdims=True)
        ent.append(float((-(att * np.log(att)).sum(-1) / math.log(n)).mean()))
        pmax.append(float(att.max(-1).mean()))
        o = (att @ v).transpose(0, 2, 1, 3).reshape(B, n, D)
        h = h + lin(o, L["o"])
        a = np_layernorm(h, *L["ln2"], eps)
        h = h + lin(np_gelu(lin(a, L["fc1"])), L["fc2"])
    h = np_layernorm(h, *P["norm"], eps)
    return lin(h[:, 0], P["head"]), dict(attn_entropy=ent, attn_pmax=pmax)


def np_round_rne(a64, dtype):
    """Reference round-to-nearest-even of float32 values to BF16 / F16, returned as float64."""
    f = a64.astype(np.float32)
    if dtype == "F16":
        return f.astype(np.float16).astype(np.float64)  # numpy's cast is RNE
    u = f.view(np.uint32).astype(np.uint64)
    r = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return ((r.astype(np.uint32) << 16)).view(np.float32).astype(np.float64)


# ----------------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "tests", "fixtures", "models"))
    args = ap.parse_args()
    out_dir = os.path.normpath(args.out)
    os.makedirs(out_dir, exist_ok=True)

    base_cfgs = {m["name"]: m for m in MODELS if "base" not in m}
    manifest, total = [], 0
    for spec in MODELS:
        cfg = dict(base_cfgs[spec["base"]]) if "base" in spec else dict(spec)
        cfg.update(name=spec["name"], naming=spec["naming"], dtype=spec["dtype"])
        name, naming, dtype = cfg["name"], cfg["naming"], cfg["dtype"]
        D, depth = cfg["dim"], cfg["depth"]

        gen = torch.Generator().manual_seed(cfg["seed"])
        model = build_model(cfg)
        randomize(model, cfg, gen)
        x = make_pixels(cfg, torch.Generator().manual_seed(cfg["seed"] + 1))

        # Storage precision: round the float32 weights (RNE) and use the rounded values for the
        # reference too.
        tdt = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16}[dtype]
        f32_sd = OrderedDict((k, v.clone()) for k, v in model.state_dict().items())
        stored_tv = OrderedDict((k, v.to(tdt)) for k, v in f32_sd.items())
        if dtype != "F32":
            for k, v in stored_tv.items():
                ref = np_round_rne(f32_sd[k].double().numpy(), dtype)
                assert np.array_equal(v.double().numpy(), ref), "rounding of " + k
        model.load_state_dict(OrderedDict((k, v.float()) for k, v in stored_tv.items()))

        # References: float64 with the unfused attention (the math as written), float32 under
        # no_grad (whichever path PyTorch 1.13 picks) and, for information, the other paths.
        m64 = copy.deepcopy(model).double().eval()
        logits64, path64, _ = run(m64, x.double(), fused_allowed=False)
        logits64_nograd, _, _ = run(m64, x.double(), fused_allowed=True)
        logits32, path32, ncalls = run(model, x, fused_allowed=True)
        logits32_unfused, _, _ = run(model, x, fused_allowed=False)
        assert path64.startswith("unfused")
        assert torch.isfinite(logits64).all()
        f32_vs_f64 = (logits64 - logits32.double()).abs().max().item()
        f32u_vs_f64 = (logits64 - logits32_unfused.double()).abs().max().item()
        f64_paths = (logits64 - logits64_nograd).abs().max().item()

        # Write the checkpoint in its naming and the io file.
        eco = rename(stored_tv, naming, depth, D)
        file, io = name + ".safetensors", name + ".io.safetensors"
        write_safetensors(os.path.join(out_dir, file), eco, METADATA[naming])
        write_safetensors(os.path.join(out_dir, io), OrderedDict([
            ("pixel_values", x), ("logits", logits64), ("logits_f32", logits32)]),
            OrderedDict([("model", file), ("logits", "float64, eval, unfused attention"),
                         ("logits_f32", "float32, eval, no_grad: " + path32)]))

        # Self-check 1: reload, map back to torchvision names, rebuild, same logits bit for bit.
        meta, T = read_safetensors(os.path.join(out_dir, file))
        assert meta == METADATA[naming], meta
        assert list(T.keys()) == list(eco.keys()), "tensor order"
        assert all(dt == dtype for dt, _ in T.values())
        tv_keys = list(build_model(cfg).state_dict().keys())
        back = unrename(OrderedDict((k, torch.from_numpy(a)) for k, (_, a) in T.items()), naming, tv_keys, depth, D)
        fresh = build_model(cfg).double()
        fresh.load_state_dict(back, strict=True)
        for k, v in fresh.state_dict().items():
            assert torch.equal(v, stored_tv[k].double()), k
        again, _, _ = run(fresh, x.double(), fused_allowed=False)
        assert torch.equal(again, logits64), name + ": reloaded model does not reproduce the logits"
        _, IO = read_safetensors(os.path.join(out_dir, io))
        assert np.array_equal(IO["pixel_values"][1], x.double().numpy())
        assert np.array_equal(IO["logits"][1], logits64.numpy())
        assert IO["logits"][0] == "F64" and IO["logits_f32"][0] == "F32" and IO["pixel_values"][0] == "F32"

        # Self-check 2: an independent numpy forward written against this naming's tensor names.
        Tn = OrderedDict((k, a) for k, (_, a) in T.items())
        np_logits, stats = np_forward(naming, Tn, cfg, IO["pixel_values"][1])
        np_err = float(np.abs(np_logits - logits64.numpy()).max())
        assert np_err < 1e-10, (name, np_err)

        # Non-trivial: logits of order one, attention far from uniform.
        lmax = logits64.abs().max().item()
        assert 0.5 < lmax < 20, (name, lmax)
        assert max(stats["attn_entropy"]) < 0.9, (name, stats)

        size = sum(os.path.getsize(os.path.join(out_dir, f)) for f in (file, io))
        total += size
        entry = OrderedDict(name=name, file=file, io=io, naming=naming, dtype=dtype)
        for k in ["image_size", "patch_size", "in_chans", "dim", "depth", "heads", "mlp_dim", "num_classes", "eps"]:
            entry[k] = cfg[k]
        entry.update(
            tokens=(cfg["image_size"] // cfg["patch_size"]) ** 2 + 1,
            batch=cfg["batch"],
            f32_vs_f64=f32_vs_f64,
            f32_attention_path=path32,
            f32_unfused_vs_f64=f32u_vs_f64,
            f64_fused_vs_unfused=f64_paths,
            logits_absmax=lmax,
            attn_entropy=[round(e, 4) for e in stats["attn_entropy"]],
            attn_pmax=[round(e, 4) for e in stats["attn_pmax"]],
        )
        manifest.append(entry)
        print("%-12s %-11s %-4s n=%-3d D=%-3d H=%d  |logits|max=%.3f  f32-f64=%.2e (%s)  "
              "unfused f32-f64=%.2e  numpy-torch=%.1e  attn entropy/log n=%s  %d bytes" % (
                  name, naming, dtype, entry["tokens"], D, cfg["heads"], lmax, f32_vs_f64, path32.split()[0],
                  f32u_vs_f64, np_err, entry["attn_entropy"], size))

    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    total += os.path.getsize(os.path.join(out_dir, "manifest.json"))
    print("total %d bytes in %s" % (total, out_dir))
    h = hashlib.sha256()
    for e in manifest:
        for fn in (e["file"], e["io"]):
            with open(os.path.join(out_dir, fn), "rb") as f:
                h.update(f.read())
    print("sha256 of all fixture files: " + h.hexdigest())


if __name__ == "__main__":
    main()
