#!/usr/bin/env bash
# The whole test suite: installs what it needs, then builds and runs every test twice,
# in Release and under AddressSanitizer + UndefinedBehaviorSanitizer, then fuzzes every
# input parser for a minute (scripts/fuzz.sh; VITQK_FUZZ_SECONDS changes the minute).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
jobs=$(nproc)
for kind in release asan; do
  echo "== $kind build"
  scripts/build.sh "$kind"
  dir=build; [[ $kind == asan ]] && dir=build-asan
  echo "== $kind tests"
  # halt_on_error: a sanitizer report fails the run; leaks too.
  # Tests run two at a time on two cores: idle OpenMP threads must sleep, not spin.
  OMP_WAIT_POLICY=passive ASAN_OPTIONS=detect_leaks=1:halt_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir "$dir" --output-on-failure -j "$jobs"
done
scripts/fuzz.sh "${VITQK_FUZZ_SECONDS:-60}"
echo "== all tests passed"
