#!/usr/bin/env bash
# One command for the whole test suite: installs what is missing, builds everything under
# AddressSanitizer + UndefinedBehaviorSanitizer (-O0) and runs every ctest test (unit and
# end-to-end against devin-sim, the PostgreSQL ones against a throwaway server of
# scripts/pg-cluster.sh), gives each libFuzzer target a short run, and runs every benchmark
# script at tiny sizes. Environment: FUZZ_SECONDS (per target, default 10; 0 skips
# fuzzing), BENCH_SMOKE=0 skips the benchmark smoke run; extra arguments go to ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

# A fresh clone on a machine that built before reuses ccache's objects: paths are hashed
# relative to the checkout (only debug info's directory names differ).
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}" CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-true}"

summary=$(mktemp)
# A throwaway PostgreSQL server for the PostgreSQL tests (the store's contract suite on its
# second backend, the daemons sharing one database), stopped however this script ends. The
# build turns those tests on, so a server that failed to start fails them rather than skipping.
pg_dir=$(mktemp -d "${TMPDIR:-/tmp}/devin-orch-pg.XXXXXX")
trap 'scripts/pg-cluster.sh stop "$pg_dir"; rm -f "$summary"' EXIT
DEVIN_ORCH_TEST_PG_URL=$(scripts/pg-cluster.sh start "$pg_dir") || DEVIN_ORCH_TEST_PG_URL=
export DEVIN_ORCH_TEST_PG_URL DEVIN_ORCH_TEST_POSTGRESQL=ON
ASAN_BUILD_DIR=${TEST_BUILD_DIR:-build/test} scripts/sanitizers.sh "$@" | tee "$summary"

if [ "${FUZZ_SECONDS:-10}" != 0 ]; then
  FUZZ_BUILD_DIR=${FUZZ_BUILD_DIR:-build/fuzz} scripts/fuzz.sh "${FUZZ_SECONDS:-10}"
fi

# The benchmark scripts at tiny sizes, so they keep working (figures: bench/run-all).
if [ "${BENCH_SMOKE:-1}" != 0 ]; then
  BENCH_BUILD_DIR=${TEST_BUILD_DIR:-build/test} bench/run-all --smoke >"${TEST_BUILD_DIR:-build/test}/bench-smoke.log" 2>&1 ||
    { tail -40 "${TEST_BUILD_DIR:-build/test}/bench-smoke.log" >&2; exit 1; }
  echo "bench: smoke run of every scenario passed (log: ${TEST_BUILD_DIR:-build/test}/bench-smoke.log)"
fi

# ctest's own verdict last, so whoever reads the end of the log sees the real count.
grep -E '^[0-9]+% tests passed' "$summary" | tail -1
