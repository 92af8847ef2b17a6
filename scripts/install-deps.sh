#!/usr/bin/env bash
# Installs every Debian package vitqk needs to build, test and run. Idempotent.
#   scripts/install-deps.sh          build + test + run dependencies
#   scripts/install-deps.sh --peers  also PyTorch/torchvision (fixture generation, peer benchmarks)
#                                    and, where npm is installed, ONNX Runtime into tools/peers
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libdnnl-dev                     # oneDNN: GEMM (OpenMP threading)
  ocl-icd-opencl-dev              # only a Recommends of libdnnl-dev, but its CMake config requires OpenCL
  libopenblas-openmp-dev          # LAPACK (SVD), OpenMP threading
  libstb-dev                      # PNG, BMP, GIF, PNM decoding
  libjpeg62-turbo-dev             # JPEG decoding (the libjpeg-turbo PIL uses)
  libcli11-dev nlohmann-json3-dev zlib1g-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang-14 libclang-rt-14-dev libomp-14-dev   # libFuzzer targets (scripts/fuzz.sh)
  openmpi-bin libopenmpi-dev      # data-parallel training (mpirun -np N vitqk train)
  dataset-fashion-mnist           # /usr/share/datasets/fashion-mnist
)
if [[ "${1:-}" == "--peers" ]]; then
  packages+=(python3-torch python3-torchvision python3-pil python3-numpy)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
else
  sudo=()
  if [[ $(id -u) -ne 0 ]]; then sudo=(sudo); fi
  echo "install-deps: installing ${missing[*]}"
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The ONNX Runtime peer of `vitqk bench --peers`: npm's onnxruntime-node, CPU only (install
# scripts skipped: they only fetch GPU libraries), into tools/peers/node_modules.
if [[ "${1:-}" == "--peers" ]]; then
  if command -v npm > /dev/null; then
    (cd "$(dirname "$0")/../tools/peers" && npm install --ignore-scripts --no-audit --no-fund --silent)
    echo "install-deps: onnxruntime-node in tools/peers/node_modules"
  else
    echo "install-deps: no npm: the ONNX Runtime peer needs Node.js and npm (tools/peers/package.json)"
  fi
fi
