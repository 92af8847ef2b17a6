#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ (clang, AddressSanitizer + UndefinedBehaviorSanitizer,
# asserts on) in build-fuzz/ and runs each for SECONDS (default 60), two at a time. Fails on any
# finding: a crash, sanitizer report or leak, an input that takes over 1 s, or one that needs
# over 512 MiB. Findings land in build-fuzz/findings/<target>/ and are printed in base64, so a
# CI log carries them; new coverage goes to build-fuzz/corpus/<target>/, the committed seeds
# in fuzz/corpus/<target>/ stay as they are.
#   scripts/fuzz.sh [SECONDS] [TARGET...]      targets: safetensors naming config_json idx image checkpoint
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift $(($# > 0 ? 1 : 0))
dir=build-fuzz
targets=("$@")
if ((${#targets[@]} == 0)); then
  for f in fuzz/fuzz_*.cpp; do
    t=${f#fuzz/fuzz_}
    targets+=("${t%.cpp}")
  done
fi

cmake -S . -B "$dir" -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_BUILD_TYPE=Debug \
  -DVITQK_FUZZ=ON -DBUILD_TESTING=OFF > /dev/null
cmake --build "$dir" --target fuzzers -j "$(nproc)"

# A smaller quarantine than ASan's 256 MiB keeps the 512 MiB limit about the inputs.
export OMP_NUM_THREADS=1 ASAN_OPTIONS=detect_leaks=1:quarantine_size_mb=64 UBSAN_OPTIONS=print_stacktrace=1

run() {
  local t=$1 dir=$2 seconds=$3
  local bin=$dir/fuzz/fuzz_$t findings=$dir/findings/$t log=$dir/logs/$t.log
  mkdir -p "$dir/corpus/$t" "$dir/logs"
  local dict=()
  [[ -f fuzz/$t.dict ]] && dict=(-dict="fuzz/$t.dict")
  local end=$((SECONDS + seconds)) total=0 rc runs
  while ((SECONDS < end)); do
    rm -rf "$findings"
    mkdir -p "$findings"
    rc=0
    "$bin" "$dir/corpus/$t" "fuzz/corpus/$t" "${dict[@]}" -max_total_time=$((end - SECONDS)) -max_len=8192 \
      -timeout=1 -rss_limit_mb=512 -malloc_limit_mb=512 -detect_leaks=1 -print_final_stats=1 \
      -artifact_prefix="$findings/" > "$log" 2>&1 || rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    total=$((total + ${runs:-0}))
    ((rc == 0)) && break
    # The timeout is wall-clock time: on a loaded machine a stall can stop the clock-watcher's
    # victim mid-input. An input that then runs in time, three times alone, was not the cause.
    local slow=("$findings"/timeout-*)
    if [[ -f ${slow[0]} ]] && "$bin" -timeout=1 -runs=3 "${slow[0]}" > "$log.recheck" 2>&1; then
      echo "fuzz_$t: an input timed out but runs in time alone (a stall of the machine); fuzzing on"
      mkdir -p "$dir/stalls/$t"
      mv "${slow[0]}" "$dir/stalls/$t/"
      continue
    fi
    echo "fuzz_$t: FAILED (exit $rc); log $log"
    grep -E "^(==|SUMMARY|.*runtime error|.*ERROR: libFuzzer|.*Test unit written)" "$log" | head -20 || true
    for f in "$findings"/*; do
      [[ -f $f ]] || continue
      echo "finding $f (base64):"
      head -c 65536 "$f" | base64
    done
    return 1
  done
  echo "fuzz_$t: $total inputs in $seconds s, no finding"
}
export -f run

echo "== fuzzing ${#targets[@]} targets for $seconds s each, two at a time"
printf '%s\n' "${targets[@]}" | xargs -P 2 -I{} bash -c 'run "$@"' _ {} "$dir" "$seconds"
echo "== fuzzing found nothing"
