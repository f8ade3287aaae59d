#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan+UBSan) in build-fuzz/ (or $FUZZ_BUILD_DIR) and
# runs each for N seconds (default 60) over its seed corpus. Exit status 1 if any target crashed.
# Usage: scripts/fuzz.sh [seconds-per-target] [target...]   e.g. scripts/fuzz.sh 15 fuzz_config
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
build_dir=${FUZZ_BUILD_DIR:-build-fuzz}
cxx=${FUZZ_CXX:-clang++}

if ! command -v "$cxx" >/dev/null 2>&1; then
  echo "fuzz: $cxx not found (Debian: apt-get install clang libclang-rt-14-dev)" >&2
  exit 2
fi
if [ ! -f "$build_dir/build.ninja" ]; then
  # -O1 keeps executions fast without the compile time and memory of -O2 on the Beast units;
  # NDEBUG stays off so that assertions count as findings.
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_CXX_COMPILER="$cxx" \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
        -DDEVIN_ORCH_FUZZ=ON -DDEVIN_ORCH_TESTS=OFF >/dev/null
fi
cmake --build "$build_dir" --parallel "$(nproc)" --target fuzzers

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for source in tests/fuzz/*_fuzz.cpp; do
    name=$(basename "$source" .cpp)
    targets+=("fuzz_${name%_fuzz}")
  done
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
# Known leaks inside third-party libraries, each explained in the file.
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/lsan.supp}
status=0
summary=()
for target in "${targets[@]}"; do
  stem=${target#fuzz_}
  seeds="tests/fuzz/corpus/$stem"
  # New inputs go to the build tree; the checked-in corpus stays a small, reviewed seed set.
  work="$build_dir/corpus/$stem"
  artifacts="$build_dir/crashes/$stem"
  mkdir -p "$work" "$artifacts"
  log="$build_dir/$target.log"
  echo "fuzz: $target for ${seconds}s (log $log)"
  if "$build_dir/$target" -max_total_time="$seconds" -timeout=10 -max_len=8192 \
      -print_final_stats=1 -artifact_prefix="$artifacts/" "$work" "$seeds" >"$log" 2>&1; then
    result=ok
  else
    result="CRASH (see $log and $artifacts/)"
    status=1
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  per_second=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  coverage=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 || true)
  corpus=$(find "$work" -type f | wc -l)
  summary+=("$(printf '%-18s %-8s execs=%-10s exec/s=%-7s %-22s corpus=%s' "$target" \
    "${result%% *}" "${execs:-?}" "${per_second:-?}" "${coverage:-cov: ?}" "$corpus")")
  if [ "$result" != ok ]; then
    grep -E 'ERROR: |runtime error|fuzz property violated|Test unit written' "$log" | head -5 >&2
  fi
done
printf '%s\n' "${summary[@]}"
exit "$status"
