#!/usr/bin/python3
"""Training speed of vitqk against PyTorch, same model, recipe, data and threads, in one run.

    /usr/bin/python3 tools/peers/train_bench.py [--vitqk build/vitqk] [--threads 2] [--images 6400]
                                                [--model-config FILE] [--repeat 3]

For each query-key form (factorized, merged) it runs `vitqk train` and tools/torch_train.py (the
PyTorch reference of the same recipe) for one epoch of the first --images Fashion-MNIST training
images on the default model (or --model-config's sizes) and batch, and prints both engines'
training images/s (the training loop only: batches, forward, backward, optimiser; evaluation
excluded) and their ratio. Every run is repeated --repeat times, engines taking turns, and the
median counts: one run of PyTorch moves by up to 20% on these shared machines. PyTorch runs at its
best set-up, as in `vitqk bench --peers`: OpenMP OpenBLAS, its thread count, raised glibc malloc
thresholds, the faster (by median) of the two OPENBLAS_CORETYPE settings. --json prints JSON.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def images_per_s(jsonl):
    with open(jsonl) as f:
        lines = [json.loads(l) for l in f if l.strip()]
    return lines[-1]["images_per_s"]


def run(cmd, env=None):
    r = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        sys.exit("train_bench.py: %s failed: %s" % (os.path.basename(cmd[0]), r.stderr.strip().splitlines()[-1:]))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vitqk", default=os.path.join(ROOT, "build", "vitqk"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--images", type=int, default=6400, help="training images (one epoch of them)")
    ap.add_argument("--model-config", help="model sizes as `vitqk train --model-config` reads them")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each engine and setting; the median counts")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if a.repeat < 1:
        ap.error("--repeat must be at least 1")
    common = ["--epochs", "1", "--batch", "128", "--limit-train", str(a.images), "--limit-test", "256",
              "--threads", str(a.threads), "-q"] + (["--model-config", a.model_config] if a.model_config else [])
    torch_env = dict(os.environ, LD_LIBRARY_PATH="/usr/lib/x86_64-linux-gnu/openblas-openmp",
                     OMP_NUM_THREADS=str(a.threads), MALLOC_MMAP_THRESHOLD_="33554432",
                     MALLOC_TRIM_THRESHOLD_="4294967296")
    rows = []
    with tempfile.TemporaryDirectory(prefix="vitqk-train-bench-") as tmp:
        for form in ["factorized", "merged"]:
            cores = ["Haswell", "SkylakeX"]
            ours, theirs = [], {core: [] for core in cores}
            for i in range(a.repeat):
                out = os.path.join(tmp, "vitqk_%s_%d" % (form, i))
                run([a.vitqk, "train", "--attention", form, "--out", out] + common)
                ours.append(images_per_s(os.path.join(out, "log.jsonl")))
                for core in cores:
                    log = os.path.join(tmp, "torch_%s_%s_%d.jsonl" % (form, core, i))
                    run(["/usr/bin/python3", os.path.join(ROOT, "tools", "torch_train.py"), "--attention", form,
                         "--out", log] + common, dict(torch_env, OPENBLAS_CORETYPE=core))
                    theirs[core].append(images_per_s(log))
            best = max(cores, key=lambda core: statistics.median(theirs[core]))
            mine, peer = statistics.median(ours), statistics.median(theirs[best])
            rows.append(dict(form=form, vitqk_images_per_s=mine, pytorch_images_per_s=peer,
                             pytorch_setup="OPENBLAS_CORETYPE=" + best, speedup=mine / peer,
                             vitqk_runs=ours, pytorch_runs=theirs[best]))
    if a.json:
        print(json.dumps(dict(threads=a.threads, images=a.images, batch=128, repeat=a.repeat, results=rows), indent=2))
        return
    print("training the default Fashion-MNIST model, batch 128, %d images, %d threads, median of %d runs"
          % (a.images, a.threads, a.repeat))
    print("%-11s %16s %18s %9s  %s" % ("attention", "vitqk images/s", "PyTorch images/s", "speed-up", "PyTorch set-up"))
    for r in rows:
        print("%-11s %16.0f %18.0f %8.2fx  %s" % (r["form"], r["vitqk_images_per_s"], r["pytorch_images_per_s"],
                                                 r["speedup"], r["pytorch_setup"]))


if __name__ == "__main__":
    main()
