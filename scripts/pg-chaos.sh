#!/usr/bin/env bash
# The long replica chaos run on PostgreSQL: the CI test PostgresReplicas.ThreeDaemons* with more
# jobs, SIGKILLs of random daemons and crashes of the database server (defaults 2,000 jobs,
# 60 kills, 4 server crashes). Three daemons share a throwaway server of scripts/pg-cluster.sh;
# the test checks zero duplicate sessions, zero lost jobs and every outcome equal to the
# simulator's. Environment: PG_CHAOS_JOBS, PG_CHAOS_KILLS, PG_CHAOS_SERVER_CRASHES,
# PG_CHAOS_SEED, PG_CHAOS_SECONDS (the wait for the queue to drain after the last kill).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
build_dir=${BUILD_DIR:-build/release}
if [ ! -f "$build_dir/build.ninja" ]; then
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" >/dev/null
fi
cmake -S . -B "$build_dir" -DDEVIN_ORCH_TEST_POSTGRESQL=ON >/dev/null
cmake --build "$build_dir" --parallel "$(nproc)" --target test_integration devin-orch devin-sim
PG_CHAOS_JOBS=${PG_CHAOS_JOBS:-2000} PG_CHAOS_KILLS=${PG_CHAOS_KILLS:-60} \
  PG_CHAOS_SERVER_CRASHES=${PG_CHAOS_SERVER_CRASHES:-4} PG_CHAOS_SEED=${PG_CHAOS_SEED:-$RANDOM} \
  PG_CHAOS_SECONDS=${PG_CHAOS_SECONDS:-600} \
  "$build_dir/tests/test_integration" --gtest_filter='PostgresReplicas.ThreeDaemons*'
