#!/usr/bin/env bash
# One command for the whole test suite: installs what is missing, builds everything under
# AddressSanitizer + UndefinedBehaviorSanitizer (-O0) and runs every ctest test (unit and
# end-to-end against devin-sim), then gives each libFuzzer target a short run.
# Environment: FUZZ_SECONDS (per target, default 10; 0 skips fuzzing), extra args go to ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

summary=$(mktemp)
trap 'rm -f "$summary"' EXIT
ASAN_BUILD_DIR=${TEST_BUILD_DIR:-build/test} scripts/sanitizers.sh "$@" | tee "$summary"

if [ "${FUZZ_SECONDS:-10}" != 0 ]; then
  FUZZ_BUILD_DIR=${FUZZ_BUILD_DIR:-build/fuzz} scripts/fuzz.sh "${FUZZ_SECONDS:-10}"
fi

# ctest's own verdict last, so whoever reads the end of the log sees the real count.
grep -E '^[0-9]+% tests passed' "$summary" | tail -1
