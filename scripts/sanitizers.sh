#!/usr/bin/env bash
# Builds everything with g++ at -O0 under ASan+UBSan in build-asan/ (or $ASAN_BUILD_DIR) and
# runs the whole ctest suite; any sanitizer report fails the run. Extra arguments go to ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${ASAN_BUILD_DIR:-build-asan}

if [ ! -f "$build_dir/build.ninja" ]; then
  # Debug is -O0 -g: at -O1 the Beast/coroutine units need minutes and ~3 GB each under ASan.
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_CXX_COMPILER="${SANITIZE_CXX:-g++}" \
        -DCMAKE_BUILD_TYPE=Debug -DDEVIN_ORCH_SANITIZE=address,undefined >/dev/null
fi
# The PostgreSQL tests, when the caller has a server for them (scripts/test.sh).
if [ -n "${DEVIN_ORCH_TEST_POSTGRESQL:-}" ]; then
  cmake -S . -B "$build_dir" -DDEVIN_ORCH_TEST_POSTGRESQL="$DEVIN_ORCH_TEST_POSTGRESQL" >/dev/null
fi
cmake --build "$build_dir" --parallel "$(nproc)"

# abort_on_error and halt_on_error turn any report into a failed test, never a log line.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
# Known leaks inside third-party libraries, each explained in the file.
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/lsan.supp}
ctest --test-dir "$build_dir" --output-on-failure --parallel "$(nproc)" "$@"
