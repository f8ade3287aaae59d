#!/usr/bin/env bash
# The long exactly-once chaos run: the CI crash test with more jobs and kills (defaults 1,000
# jobs, 50 SIGKILLs), 5xx answers that announce a wait (Retry-After) and the check that no
# request lands inside one. Prints the figures; with --record, appends them to
# docs/reliability.md.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${CHAOS_JOBS:-1000}
kills=${CHAOS_KILLS:-50}
seed=${CHAOS_SEED:-$RANDOM}
scripts/setup.sh
scripts/build.sh --target test_integration devin-orch devin-sim
build_dir=${BUILD_DIR:-build/release}
log=$(mktemp)
CHAOS_JOBS=$jobs CHAOS_KILLS=$kills CHAOS_SEED=$seed \
  "$build_dir/tests/test_integration" --gtest_filter='CrashRecovery.RandomKills*' | tee "$log"
grep -q '\[  PASSED  \] 1 test' "$log"
if [ "${1:-}" = "--record" ]; then
  {
    echo
    echo "- $(date -u +%Y-%m-%d) commit $(git rev-parse --short HEAD), seed $seed:"
    grep '^chaos:' "$log" | sed 's/^chaos: /  /'
  } >> docs/reliability.md
fi
rm -f "$log"
