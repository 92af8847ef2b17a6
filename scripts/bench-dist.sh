#!/usr/bin/env bash
# Data-parallel training speed on this machine, and what it projects for a cluster.
# For the default model (fmnist) and a ViT-B/16: training images/s with 1 process x 2
# threads and with 2 processes x 1 thread (mpirun), the all-reduce time per step and its
# share; then the speed-up on 2, 8 and 64 machines at 10 and 100 Gbit/s, from the measured
# compute time per image and the ring all-reduce volume 2 (N-1)/N x parameter bytes.
#   scripts/bench-dist.sh [build/vitqk]
# Environment: MPIRUN_ARGS (default: loopback TCP, the path between machines),
# FMNIST_BATCH/STEPS (128/40), VITB_BATCH/STEPS (8/3).
set -euo pipefail
cd "$(dirname "$0")/.."
vitqk=${1:-build/vitqk}
[[ -x $vitqk ]] || { echo "bench-dist: $vitqk not found (scripts/build.sh release)" >&2; exit 1; }
mpi=(mpirun -np 2 ${MPIRUN_ARGS:---mca pml ob1 --mca btl tcp,self --mca btl_tcp_if_include lo})
if [[ $(id -u) -eq 0 ]]; then mpi+=(--allow-run-as-root); fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

measure() {  # name preset batch steps
  local name=$1 preset=$2 batch=$3 steps=$4
  local common=(bench --train --preset "$preset" --batch "$batch" --runs "$steps" --warmup 1 --json)
  echo "bench-dist: $name, 1 process x 2 threads" >&2
  "$vitqk" "${common[@]}" --threads 2 > "$out/$name.1x2.json"
  echo "bench-dist: $name, 2 processes x 1 thread" >&2
  "${mpi[@]}" "$vitqk" "${common[@]}" --threads 1 > "$out/$name.2x1.json"
}
echo "bench-dist: load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
measure fmnist fmnist "${FMNIST_BATCH:-128}" "${FMNIST_STEPS:-40}"
measure vit-b16 vit-b16 "${VITB_BATCH:-8}" "${VITB_STEPS:-3}"
echo "bench-dist: load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

/usr/bin/python3 - "$out" <<'EOF'
import json, sys
out = sys.argv[1]
# Projected global batch per model: the fmnist default, and DeiT-B's 1024 for ViT-B/16.
global_batch = {"fmnist": 128, "vit-b16": 1024}
print("| model | processes x threads | batch | images/s | step ms | compute ms | wait ms | all-reduce ms | all-reduce share |")
print("|---|---|---|---|---|---|---|---|---|")
runs = {}
for name in global_batch:
    for kind in ("1x2", "2x1"):
        r = json.load(open(f"{out}/{name}.{kind}.json"))
        runs[name, kind] = r
        print(f"| {name} | {r['processes']} x {r['threads_per_process']} | {r['batch']} | {r['images_per_s']:.2f} "
              f"| {r['step_ms']:.1f} | {r['compute_ms']:.1f} | {r['wait_ms']:.1f} | {r['allreduce_ms']:.2f} "
              f"| {100 * r['allreduce_share']:.1f}% |")
print()
print("Projection: N machines like this one, fixed global batch B, step = B/N x t_image + 2 (N-1)/N x P / bandwidth")
print("(t_image: measured compute per image with 1 process x 2 threads; P: parameter bytes; latency ignored).")
print()
print("| model | P (MB) | t_image (ms) | B | link | N=2 | N=8 | N=64 |")
print("|---|---|---|---|---|---|---|---|")
for name, B in global_batch.items():
    r = runs[name, "1x2"]
    t = r["compute_ms"] / r["batch"] * 1e-3
    P = r["params"] * 4
    for gbit in (10, 100):
        cells = []
        for N in (2, 8, 64):
            comm = 2 * (N - 1) / N * P / (gbit * 1e9 / 8)
            step = B / N * t + comm
            cells.append(f"{B * t / step:.1f}x ({100 * comm / step:.0f}% comm)")
        print(f"| {name} | {P / 1e6:.1f} | {t * 1e3:.2f} | {B} | {gbit} Gbit/s | " + " | ".join(cells) + " |")
EOF
