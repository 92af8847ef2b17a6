#!/usr/bin/env bash
# A new machine, one command: installs what vitqk needs, builds it, and runs the main job,
# `vitqk study` (at most 30 minutes on 2 cores; `scripts/setup.sh --quick`: about 3).
# Arguments are passed to `vitqk study`. The report lands in study/report.html.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh release
echo
echo "== vitqk study $*"
build/vitqk study "$@"
