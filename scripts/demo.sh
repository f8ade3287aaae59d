#!/usr/bin/env bash
# One command for the demo: installs what is missing, builds, starts devin-sim on a free
# loopback port, runs the daemon over config/demo.yaml and examples/jobs.yaml until every job
# is finished, and prints the outcomes.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh --target devin-orch devin-sim

build_dir=${BUILD_DIR:-build/release}
work="$build_dir/demo"
rm -rf "$work"
mkdir -p "$work"

api_key="cog_demo_$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
"$build_dir/devin-sim" --port 0 --port-file "$work/sim.port" --seed 7 --time-factor 0.02 \
  --api-key "$api_key" >"$work/sim.log" 2>&1 &
sim_pid=$!
trap 'kill "$sim_pid" 2>/dev/null || true' EXIT

for _ in $(seq 1 200); do
  [ -s "$work/sim.port" ] && break
  sleep 0.05
done
[ -s "$work/sim.port" ] || { echo "demo: devin-sim did not start:" >&2; cat "$work/sim.log" >&2; exit 1; }
port=$(cat "$work/sim.port")
echo "demo: devin-sim listening on 127.0.0.1:$port (log: $work/sim.log)"

export DEVIN_API_KEY="$api_key"
export DEVIN_ORCH_BASE_URL="http://127.0.0.1:$port"
export DEVIN_ORCH_DATABASE="$PWD/$work/demo.db"

echo "demo: running devin-orch until every job is finished (log: $work/daemon.log)"
"$build_dir/devin-orch" run --config config/demo.yaml --until-idle 2> >(tee "$work/daemon.log" >&2)
echo
echo "demo: outcomes"
"$build_dir/devin-orch" status --config config/demo.yaml
