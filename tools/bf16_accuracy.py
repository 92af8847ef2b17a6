#!/usr/bin/python3
"""Fashion-MNIST test accuracy of a vitqk model in fp32 and in bf16 (`vitqk forward --dtype`).

    /usr/bin/python3 tools/bf16_accuracy.py --model runs/fmnist/model.safetensors [--vitqk build/vitqk]

Normalises the 10,000 test images with the model's own mean and std (its "vitqk" metadata), runs
both precisions through `vitqk forward` on the same tensor, and prints both accuracies, their
difference in points, how many predictions changed, and the largest logit difference.
"""

import argparse
import gzip
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = "/usr/share/datasets/fashion-mnist"


def idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic, = struct.unpack(">I", raw[:4])
    dims = struct.unpack(">" + "I" * (magic & 0xff), raw[4:4 + 4 * (magic & 0xff)])
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * len(dims)).reshape(dims)


def safetensors_header(path):
    with open(path, "rb") as f:
        n, = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(n))


def write_tensor(path, name, a):
    a = np.ascontiguousarray(a, dtype="<f4")
    h = json.dumps({name: {"dtype": "F32", "shape": list(a.shape), "data_offsets": [0, a.nbytes]}}).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + a.tobytes())


def read_tensor(path, name):
    with open(path, "rb") as f:
        n, = struct.unpack("<Q", f.read(8))
        t = json.loads(f.read(n))[name]
        b, e = t["data_offsets"]
        f.seek(8 + n + b)
        return np.frombuffer(f.read(e - b), "<f4").reshape(t["shape"])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--vitqk", default=os.path.join(ROOT, "build", "vitqk"))
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    cfg = json.loads(safetensors_header(a.model)["__metadata__"]["vitqk"])
    p = cfg["preprocess"]
    images = idx(os.path.join(DATA, "t10k-images-idx3-ubyte.gz")).astype(np.float32) / 255.0
    labels = idx(os.path.join(DATA, "t10k-labels-idx1-ubyte.gz")).astype(np.int64)
    x = ((images - p["mean"][0]) / p["std"][0])[:, None, :, :]
    logits = {}
    with tempfile.TemporaryDirectory(prefix="vitqk-bf16-") as tmp:
        write_tensor(os.path.join(tmp, "x.safetensors"), "pixel_values", x)
        for dtype in ["fp32", "bf16"]:
            out = os.path.join(tmp, dtype + ".safetensors")
            r = subprocess.run([a.vitqk, "forward", "--model", a.model, "--dtype", dtype, "--threads", str(a.threads),
                                "--input", os.path.join(tmp, "x.safetensors"), "--output", out],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            if r.returncode != 0:
                sys.exit("bf16_accuracy.py: vitqk forward --dtype %s failed: %s" % (dtype, r.stderr.strip()))
            logits[dtype] = read_tensor(out, "logits")
    acc = {k: float((v.argmax(1) == labels).mean()) for k, v in logits.items()}
    changed = int((logits["fp32"].argmax(1) != logits["bf16"].argmax(1)).sum())
    diff = float(np.abs(logits["fp32"] - logits["bf16"]).max())
    print("%s: test accuracy fp32 %.2f%%, bf16 %.2f%% (%+.2f points); %d of %d predictions changed; "
          "largest logit difference %.3g (largest |logit| %.3g)"
          % (a.model, 100 * acc["fp32"], 100 * acc["bf16"], 100 * (acc["bf16"] - acc["fp32"]), changed, len(labels),
             diff, float(np.abs(logits["fp32"]).max())))


if __name__ == "__main__":
    main()
