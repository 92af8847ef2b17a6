#!/usr/bin/python3
"""Largest |logit| difference between vitqk and PyTorch on the committed fixtures, in every
naming and both attention forms. Needs only numpy (Debian python3-numpy) and build/vitqk.

    /usr/bin/python3 tools/compare_logits.py
"""
import json, os, struct, subprocess, sys, tempfile
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "tests/fixtures/models")


def read(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    header, out = json.loads(b[8:8 + n]), {}
    for k, v in header.items():
        if k != "__metadata__":
            s, e = v["data_offsets"]
            dt = {"F32": np.float32, "F64": np.float64}[v["dtype"]]
            out[k] = np.frombuffer(b[8 + n + s:8 + n + e], dtype=dt).reshape(v["shape"])
    return out


print(f"{'model':14s} {'form':11s} {'vitqk - torch f64':>18s} {'torch f32 - f64':>16s}")
with tempfile.TemporaryDirectory() as tmp:
    for m in json.load(open(os.path.join(FIX, "manifest.json"))):
        ref = read(os.path.join(FIX, m["io"]))
        for form in ("factorized", "merged"):
            out = os.path.join(tmp, "out.safetensors")
            subprocess.run([os.path.join(ROOT, "build/vitqk"), "forward", "--attention", form, "--ov", form,
                            "--heads", str(m["heads"]), "--model", os.path.join(FIX, m["file"]),
                            "--input", os.path.join(FIX, m["io"]), "--output", out],
                           check=True, stderr=subprocess.DEVNULL)
            got = read(out)["logits"]
            print(f"{m['name']:14s} {form:11s} {np.abs(got - ref['logits']).max():18.2e} "
                  f"{np.abs(ref['logits_f32'] - ref['logits']).max():16.2e}")
