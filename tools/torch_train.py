#!/usr/bin/python3
"""PyTorch reference of `vitqk train`: the same model, initialisation and recipe on Fashion-MNIST.

Run with Debian's python (torch 1.13):

    /usr/bin/python3 tools/torch_train.py --epochs 1 --threads 2 --out runs/torch.jsonl

The model is tools/gen_grad_fixtures.py's VitqkViT (vitqk's ViT in plain PyTorch, in either
attention form, checked there against torchvision's VisionTransformer and, through the gradient
fixtures, against vitqk itself): the fmnist preset (28x28x1, patch 4, width 64, depth 6, 4 heads,
MLP 128, 10 classes, LayerNorm eps 1e-6, exact GELU, class token), or the sizes of a
--model-config file as `vitqk train` reads it.

The recipe mirrors src/train/trainer.cpp, adamw.cpp, init.cpp and data.h:
* init as timm (src/train/init.cpp), --weight-init timm: matrices, patch weights and pos_embed
  N(0, 0.02), biases 0; or jax: linear weights Xavier-uniform, head 0, patch weights LeCun normal
  (truncated at 2 sigma), MLP biases N(0, 1e-6), pos_embed N(0, 0.02); both: norms 1/0,
  cls_token N(0, 1e-6); merged pairs start as the exact merge of that init (--merged-init
  product) or i.i.d. with the product's entry std (random: s_qkv^2 for qk, sqrt(d_h) s_qkv s_proj
  for ov);
* AdamW (betas 0.9/0.999, eps 1e-8), weight decay only on matrices (ndim >= 2) other than
  cls_token and pos_embed; global gradient-norm clipping (--clip 1.0); per-step learning rate:
  linear warm-up from lr/W to lr over W = int(warmup_epochs * steps_per_epoch) steps, then cosine
  to --min-lr at the last step;
* cross-entropy (label smoothing --label-smoothing, default 0); batch 128, the last partial batch dropped; a fresh
  random order every epoch;
* augmentation (on unless --no-augment, from epoch --augment-from = 2): horizontal flip with
  p = 0.5 (torchvision RandomHorizontalFlip), after a random 28x28 crop of the image zero-padded
  by --crop-pad (default 0: no crop; torchvision RandomCrop(28, padding=pad)), before
  normalising with mean 0.2860, std 0.3530;
* evaluation after every epoch on the test split (batch 256, loss without smoothing).
Random streams (order, augmentation, init) are PyTorch's, not vitqk's: runs agree in
distribution, not bit for bit.

--out FILE gets one JSON line per epoch: epoch, step, train_loss, train_acc, test_loss, test_acc,
images_per_s (training images per second, training loop only: batches, forward, backward,
optimiser; evaluation excluded), lr, seconds.
"""

import argparse
import gzip
import json
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_grad_fixtures import FACTORIZED, MERGED, VitqkViT, decays, layout, load_state, merge_state  # noqa: E402

FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
MEAN, STD = 0.2860, 0.3530
INIT_STD = 0.02


def fmnist_config(qk, ov, model_config=""):
    """The fmnist preset, or the sizes of a `vitqk train --model-config` JSON file."""
    cfg = dict(image_size=28, patch_size=4, in_chans=1, dim=64, depth=6, heads=4, mlp_dim=128, num_classes=10)
    if model_config:
        with open(model_config) as f:
            given = json.load(f)
        cfg.update({k: given[k] for k in cfg if k in given})
    depth = cfg["depth"]
    return dict(cfg, eps=1e-6, qk=[qk] * depth, ov=[ov] * depth)


# ----------------------------------------------------------------------------------------------
# Data: gzipped (or plain) IDX files
# ----------------------------------------------------------------------------------------------

def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        sys.exit("%s: too short for an IDX file" % path)
    magic, = struct.unpack(">I", raw[:4])
    if magic >> 8 != 0x08:
        sys.exit("%s: not an unsigned-byte IDX file (magic 0x%08x)" % (path, magic))
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        sys.exit("%s: %d bytes of data for shape %s" % (path, data.size, dims))
    return data.reshape(dims)


def find_idx(folder, split, kind):
    for prefix in ([split] if split == "train" else ["t10k", "test"]):
        for ext in ("", ".gz"):
            p = os.path.join(folder, "%s-%s-ubyte%s" % (prefix, kind, ext))
            if os.path.exists(p):
                return p
    sys.exit("%s: no %s %s IDX file" % (folder, split, kind))


def load_split(folder, split, limit):
    x = read_idx(find_idx(folder, split, "images-idx3"))
    y = read_idx(find_idx(folder, split, "labels-idx1"))
    if x.ndim != 3 or y.ndim != 1 or x.shape[0] != y.shape[0]:
        sys.exit("%s: %s images %s and labels %s do not match" % (folder, split, x.shape, y.shape))
    if limit > 0:
        x, y = x[:limit], y[:limit]
    return torch.from_numpy(x.copy()), torch.from_numpy(y.astype(np.int64))


def make_batch(images, labels, idx, augment, gen, pad=4):
    """uint8 [N, H, W] -> normalised float [B, 1, H, W]; augmentation before normalising."""
    x = images[idx].float().div_(255.0)
    B, H, W = x.shape
    if augment:
        xp = F.pad(x, (pad, pad, pad, pad))  # zeros: black, as torchvision's RandomCrop(padding=pad)
        oy = torch.randint(0, 2 * pad + 1, (B,), generator=gen)
        ox = torch.randint(0, 2 * pad + 1, (B,), generator=gen)
        flip = torch.rand(B, generator=gen) < 0.5
        ry, rx = torch.arange(H), torch.arange(W)
        rows = oy[:, None] + ry  # [B, H]
        cols = torch.where(flip[:, None], ox[:, None] + (W - 1 - rx), ox[:, None] + rx)  # flip after crop
        x = xp[torch.arange(B)[:, None, None], rows[:, :, None], cols[:, None, :]]
    return ((x - MEAN) / STD).unsqueeze(1).contiguous(), labels[idx]


# ----------------------------------------------------------------------------------------------
# Model initialisation (src/train/init.cpp)
# ----------------------------------------------------------------------------------------------

def linear_std(rows, cols, weight_init):
    """Entry std of a linear weight [rows, cols] (src/train/init.cpp's linear_std)."""
    return INIT_STD if weight_init == "timm" else math.sqrt(2.0 / (rows + cols))


def init_param(name, shape, gen, weight_init):
    """One factorized parameter (src/train/init.cpp's init_param)."""
    jax = weight_init == "jax"
    if name == "cls_token":
        return 1e-6 * torch.randn(shape, generator=gen)
    if "norm" in name and name.endswith(".weight"):
        return torch.ones(shape)
    if len(shape) == 1:
        return 1e-6 * torch.randn(shape, generator=gen) if jax and ".mlp." in name else torch.zeros(shape)
    if not jax or name == "pos_embed":
        return INIT_STD * torch.randn(shape, generator=gen)
    if name.startswith("head."):
        return torch.zeros(shape)
    if len(shape) == 4:  # LeCun normal, truncated at 2 sigma (timm's lecun_normal_)
        std = math.sqrt(1.0 / (math.prod(shape) // shape[0])) / 0.87962566103423978
        z = torch.randn(shape, generator=gen)
        while (bad := z.abs() > 2).any():
            z[bad] = torch.randn(int(bad.sum()), generator=gen)
        return std * z
    bound = math.sqrt(3.0) * linear_std(shape[0], shape[1], weight_init)  # Xavier uniform
    return (torch.rand(shape, generator=gen) * 2 - 1) * bound


def init_model(cfg, seed, merged_init, weight_init="timm"):
    gen = torch.Generator().manual_seed(seed)
    depth = cfg["depth"]
    fact_cfg = dict(cfg, qk=[FACTORIZED] * depth, ov=[FACTORIZED] * depth)
    sd = {name: init_param(name, shape, gen, weight_init) for name, shape in layout(fact_cfg)}
    state = {k: v.float() for k, v in merge_state(sd, fact_cfg, cfg["qk"], cfg["ov"]).items()}
    if merged_init == "random":
        D = cfg["dim"]
        s_qkv, s_proj = linear_std(3 * D, D, weight_init), linear_std(D, D, weight_init)
        qk_std = s_qkv * s_qkv
        ov_std = math.sqrt(D // cfg["heads"]) * s_qkv * s_proj
        for k in state:
            if k.endswith("attn.qk.weight"):
                state[k] = qk_std * torch.randn(state[k].shape, generator=gen)
            elif k.endswith("attn.ov.weight"):
                state[k] = ov_std * torch.randn(state[k].shape, generator=gen)
    return load_state(VitqkViT(cfg), state)


def lr_at(step, lr, min_lr, warmup, total):
    """src/train/adamw.cpp lr_at, 0-based step."""
    if step < warmup:
        return lr * (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * t))


@torch.no_grad()
def evaluate(model, images, labels, batch=256):
    model.eval()
    loss, correct = 0.0, 0
    for i in range(0, images.shape[0], batch):
        idx = torch.arange(i, min(i + batch, images.shape[0]))
        x, y = make_batch(images, labels, idx, False, None)
        z = model(x)
        loss += F.cross_entropy(z, y, reduction="sum").item()
        correct += (z.argmax(-1) == y).sum().item()
    model.train()
    n = images.shape[0]
    return loss / n, correct / n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="fashion-mnist", help="fashion-mnist or a folder of (gzipped) IDX files")
    ap.add_argument("--model-config", default="", help="model sizes as for vitqk train --model-config (default: fmnist)")
    ap.add_argument("--attention", choices=[FACTORIZED, MERGED], default=FACTORIZED, help="query-key form")
    ap.add_argument("--ov", choices=[FACTORIZED, MERGED], default=FACTORIZED, help="value-output form")
    ap.add_argument("--merged-init", choices=["product", "random"], default="product")
    ap.add_argument("--weight-init", choices=["timm", "jax"], default="jax")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr", type=float, default=1e-5)
    ap.add_argument("--wd", type=float, default=0.05)
    ap.add_argument("--warmup-epochs", type=float, default=0.1)
    ap.add_argument("--clip", type=float, default=1.0, help="max global gradient norm (0: off)")
    ap.add_argument("--label-smoothing", type=float, default=0.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-augment", action="store_true", help="turn off random crop and horizontal flip")
    ap.add_argument("--augment-from", type=int, default=2, help="first epoch (1-based) with augmentation")
    ap.add_argument("--crop-pad", type=int, default=0, help="zero padding around the random crop")
    ap.add_argument("--limit-train", type=int, default=0)
    ap.add_argument("--limit-test", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: PyTorch's default)")
    ap.add_argument("--out", default="", help="write one JSON line per epoch to this file")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    a = ap.parse_args()

    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    folder = FASHION_MNIST if a.data == "fashion-mnist" else a.data
    tr_x, tr_y = load_split(folder, "train", a.limit_train)
    te_x, te_y = load_split(folder, "test", a.limit_test)
    if tuple(tr_x.shape[1:]) != (28, 28):
        sys.exit("%s: images are %s, the model takes 28x28x1" % (folder, tuple(tr_x.shape[1:])))
    if a.batch > tr_x.shape[0]:
        sys.exit("--batch %d is larger than the training set (%d images)" % (a.batch, tr_x.shape[0]))

    cfg = fmnist_config(a.attention, a.ov, a.model_config)
    cfg["num_classes"] = int(max(tr_y.max().item(), te_y.max().item())) + 1
    model = init_model(cfg, a.seed, a.merged_init, a.weight_init)
    named = list(model.named_parameters())
    groups = [{"params": [p for n, p in named if decays(n, p.shape)], "weight_decay": a.wd},
              {"params": [p for n, p in named if not decays(n, p.shape)], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=a.lr, betas=(0.9, 0.999), eps=1e-8)

    steps_per_epoch = tr_x.shape[0] // a.batch
    total = steps_per_epoch * a.epochs
    warmup = int(a.warmup_epochs * steps_per_epoch)
    params = sum(p.numel() for _, p in named)
    print("torch %s, %d threads; fmnist ViT, qk %s, ov %s (%s init), %d parameters; %d training images, %d test, "
          "%d steps/epoch, augment %s" % (torch.__version__, torch.get_num_threads(), a.attention, a.ov, a.merged_init,
                                          params, tr_x.shape[0], te_x.shape[0], steps_per_epoch,
                                          "off" if a.no_augment else "on"), file=sys.stderr)
    out = open(a.out, "w") if a.out else None
    step = 0
    model.train()
    for epoch in range(a.epochs):
        gen = torch.Generator().manual_seed(a.seed * 1_000_003 + epoch)
        order = torch.randperm(tr_x.shape[0], generator=gen)
        loss_sum, correct, seen, t0 = 0.0, 0, 0, time.perf_counter()
        for pos in range(steps_per_epoch):
            idx = order[pos * a.batch:(pos + 1) * a.batch]
            x, y = make_batch(tr_x, tr_y, idx, not a.no_augment and epoch + 1 >= a.augment_from, gen, a.crop_pad)
            lr = lr_at(step, a.lr, a.min_lr, warmup, total)
            for g in opt.param_groups:
                g["lr"] = lr
            z = model(x)
            loss = F.cross_entropy(z, y, label_smoothing=a.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if a.clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), a.clip)
            opt.step()
            step += 1
            loss_sum += loss.item()
            correct += (z.detach().argmax(-1) == y).sum().item()
            seen += a.batch
            if not a.quiet and (pos + 1 == steps_per_epoch or (pos + 1) % 20 == 0):
                el = time.perf_counter() - t0
                print("\repoch %d/%d  %d/%d  loss %.4f  %.0f img/s" % (
                    epoch + 1, a.epochs, pos + 1, steps_per_epoch, loss_sum / (pos + 1), seen / el),
                    end="", file=sys.stderr, flush=True)
        train_secs = time.perf_counter() - t0
        test_loss, test_acc = evaluate(model, te_x, te_y)
        rec = dict(epoch=epoch + 1, step=step, train_loss=loss_sum / steps_per_epoch,
                   train_acc=correct / max(1, seen), test_loss=test_loss, test_acc=test_acc,
                   images_per_s=seen / train_secs, lr=lr_at(step - 1, a.lr, a.min_lr, warmup, total),
                   seconds=train_secs)
        if not a.quiet:
            print("\repoch %d/%d  loss %.4f  test %.2f%%  %.0f img/s%s" % (
                epoch + 1, a.epochs, rec["train_loss"], 100 * test_acc, rec["images_per_s"], " " * 20),
                file=sys.stderr)
        if out:
            out.write(json.dumps(rec) + "\n")
            out.flush()
    if out:
        out.close()
    print("epoch %d: test accuracy %.2f%%, test loss %.4f, %.0f training images/s" % (
        rec["epoch"], 100 * rec["test_acc"], rec["test_loss"], rec["images_per_s"]))


if __name__ == "__main__":
    main()
