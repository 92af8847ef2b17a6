#!/usr/bin/python3
"""PyTorch peer of `vitqk bench --peers` (Debian's python3-torch 1.13 and torchvision 0.14).

    /usr/bin/python3 tools/peers/torch_bench.py --model M.safetensors --input X.safetensors \\
        --threads 2 --runs 10 [--onnx M.onnx]

Loads a vitqk checkpoint (timm naming, config in the "vitqk" metadata, standard attention) into
torchvision's VisionTransformer, times it on `pixel_values` of the input file and prints one JSON
line: the median milliseconds per batch, the set-up that gave it, and the logits. Two set-ups
are timed and the faster kept: eager under inference_mode (PyTorch 1.13 then takes its fused
multi-head-attention kernel) and TorchScript frozen by torch.jit.optimize_for_inference.
`vitqk bench --peers` runs this with the environment PyTorch is fastest in (OpenMP OpenBLAS,
OMP_NUM_THREADS, raised glibc malloc thresholds) under both OPENBLAS_CORETYPE settings.

--onnx also exports the model to ONNX for the ONNX Runtime peer (with gradients enabled: under
no_grad PyTorch 1.13 takes the fused attention path, which has no ONNX symbolic).
"""

import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import gen_fixtures as fx  # noqa: E402  (torchvision model, timm <-> torchvision names, safetensors)

# gen_fixtures pins fixture generation to one thread and deterministic kernels; not here.
torch.use_deterministic_algorithms(False)


def load(path):
    meta, tensors = fx.read_safetensors(path)
    if not meta or "vitqk" not in meta:
        sys.exit("torch_bench.py: %s: not a vitqk checkpoint (no 'vitqk' metadata)" % path)
    c = json.loads(meta["vitqk"])
    if any(f != "factorized" for f in c["qk"] + c["ov"]) or c["num_classes"] <= 0:
        sys.exit("torch_bench.py: %s: needs standard attention and a classifier head" % path)
    cfg = {k: c[k] for k in ["image_size", "patch_size", "in_chans", "dim", "depth", "heads", "mlp_dim",
                             "num_classes", "eps"]}
    model = fx.build_model(cfg)
    eco = {k: torch.from_numpy(a).float() for k, (_, a) in tensors.items()}
    tv = fx.unrename(eco, "timm", list(model.state_dict().keys()), cfg["depth"], cfg["dim"])
    model.load_state_dict(tv, strict=True)
    return model.eval()


def timed(fn, x, runs, warmup):
    with torch.inference_mode():
        for _ in range(warmup):
            y = fn(x)
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            y = fn(x)
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), times, y


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--input", required=True, help="safetensors with float32 pixel_values [B, C, H, W]")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--onnx", default="", help="also export the model to this ONNX file")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)

    model = load(a.model)
    _, inputs = fx.read_safetensors(a.input)
    x = torch.from_numpy(inputs["pixel_values"][1]).float().contiguous()

    if a.onnx:
        torch.onnx.export(model, x, a.onnx, opset_version=14, input_names=["pixel_values"], output_names=["logits"],
                          dynamic_axes={"pixel_values": {0: "batch"}, "logits": {0: "batch"}})

    results = {}
    results["eager"] = timed(model, x, a.runs, a.warmup)
    try:
        with torch.inference_mode():
            frozen = torch.jit.optimize_for_inference(torch.jit.trace(model, x))
        results["torchscript"] = timed(frozen, x, a.runs, a.warmup)
    except Exception as e:  # noqa: BLE001  (a set-up that does not run is simply not the best)
        print("torch_bench.py: torchscript set-up skipped: %s" % str(e).splitlines()[0], file=sys.stderr)
    best = min(results, key=lambda k: results[k][0])
    ms, times, y = results[best]
    print(json.dumps({
        "engine": "pytorch", "version": torch.__version__, "threads": a.threads,
        "setup": "%s, OPENBLAS_CORETYPE=%s" % (best, os.environ.get("OPENBLAS_CORETYPE", "unset")),
        "setups_ms": {k: v[0] for k, v in results.items()},
        "median_ms": ms, "times_ms": times, "logits_shape": list(y.shape), "logits": y.flatten().tolist()}))


if __name__ == "__main__":
    main()
