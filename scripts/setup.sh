#!/usr/bin/env bash
# A new machine, one command: installs what vitqk needs, builds it, and runs the main job.
# Until `vitqk study` exists the main job is: the cost model of ViT-B/16 in both attention
# forms, a short Fashion-MNIST training run, and `vitqk classify` on the shipped images.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh release
echo
echo "== vitqk info --preset vit-b16"
build/vitqk info --preset vit-b16
echo
out=runs/demo
if [[ ! -f $out/model.safetensors ]]; then
  echo "== vitqk train (1 epoch on Fashion-MNIST, factorized attention) -> $out"
  build/vitqk train --epochs 1 --out "$out"
fi
echo
echo "== vitqk classify --model $out/model.safetensors examples/*.png"
build/vitqk classify --model "$out/model.safetensors" --top-k 3 examples/*.png
