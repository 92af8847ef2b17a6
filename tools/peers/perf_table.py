#!/usr/bin/python3
"""The README's performance tables, from `vitqk bench --peers --json` and `vitqk bench --json`.

    /usr/bin/python3 tools/peers/perf_table.py [--vitqk build/vitqk] [--threads 2] [--runs 10]

Prints Markdown: (1) every preset at batch 1 and ViT-B/16 at batch 8, vitqk fp32 beside PyTorch
and ONNX Runtime on the same weights and input (each row from one `bench --peers` run, so its
ratios are measured together), plus vitqk bf16 against the same peers; (2) GFLOP/s of both
query-key forms; (3) scaling: images/s of ViT-B/16 and ViT-Ti/16 at 1 and 2 threads and batch 1,
8 and 32. Run it on a quiet machine.
"""

import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def bench(a, *args):
    cmd = [a.vitqk, "bench", "--json", "--runs", str(a.runs)] + [str(x) for x in args]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        sys.exit("perf_table.py: %s: %s" % (" ".join(cmd), r.stderr.strip()))
    return json.loads(r.stdout)


def peer(j, engine):
    return next((p for p in j.get("peers", []) if p["engine"] == engine and "error" not in p), None)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vitqk", default=os.path.join(ROOT, "build", "vitqk"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--presets", default="vit-ti16,vit-s16,vit-b16,vit-l16,fmnist")
    a = ap.parse_args()
    t = a.threads
    runs = [(p, 1, "fp32") for p in a.presets.split(",")] + [("vit-b16", 8, "fp32"), ("vit-b16", 1, "bf16"),
                                                              ("vit-b16", 8, "bf16")]
    rows, machine = [], None
    for preset, batch, dtype in runs:
        j = bench(a, "--preset", preset, "--batch", batch, "--threads", t, "--dtype", dtype, "--peers")
        machine = j["machine"]
        rows.append((preset, batch, dtype, j))
    print("CPU: %s, %d threads; measured fp32 FMA peak %.0f GFLOP/s (%s)\n"
          % (machine["cpu"], t, machine["peak_gflops"], machine["peak_isa"]))
    print("| model | batch | vitqk | ms/batch | images/s | % of fp32 peak | PyTorch ms | ONNX Runtime ms "
          "| vs PyTorch | vs ONNX Runtime | max logit diff |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for preset, batch, dtype, j in rows:
        pt, ort = peer(j, "PyTorch"), peer(j, "ONNX Runtime")
        diff = max([p["max_logit_diff"] for p in (pt, ort) if p] or [float("nan")])
        print("| %s | %d | %s | %.2f | %.1f | %.0f%% | %s | %s | %s | %s | %.1e |" % (
            preset, batch, dtype, j["median_ms"], j["images_per_s"], 100 * j["peak_fraction"],
            "%.2f" % pt["median_ms"] if pt else "-", "%.2f" % ort["median_ms"] if ort else "-",
            "%.2fx" % pt["vitqk_speedup"] if pt else "-", "%.2fx" % ort["vitqk_speedup"] if ort else "-", diff))
    print("\nBoth query-key forms (vitqk fp32, batch 1; the merged model does more work, so compare GFLOP/s):\n")
    print("| model | factorized GFLOP/s | merged GFLOP/s | merged / factorized |")
    print("|---|---|---|---|")
    for preset in ["vit-ti16", "vit-b16"]:
        f = bench(a, "--preset", preset, "--threads", t)["gflops"]
        m = bench(a, "--preset", preset, "--threads", t, "--attention", "merged")["gflops"]
        print("| %s | %.0f | %.0f | %.2f |" % (preset, f, m, m / f))
    print("\nScaling (vitqk fp32, images/s; efficiency = 2-thread images/s / (2 x 1-thread)):\n")
    print("| model | batch | 1 thread | 2 threads | parallel efficiency |")
    print("|---|---|---|---|---|")
    for preset in ["vit-ti16", "vit-b16"]:
        for batch in [1, 8, 32]:
            one = bench(a, "--preset", preset, "--batch", batch, "--threads", 1)["images_per_s"]
            two = bench(a, "--preset", preset, "--batch", batch, "--threads", 2)["images_per_s"]
            print("| %s | %d | %.1f | %.1f | %.0f%% |" % (preset, batch, one, two, 100 * two / (2 * one)))


if __name__ == "__main__":
    main()
