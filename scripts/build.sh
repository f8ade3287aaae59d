#!/usr/bin/env bash
# Configures and builds an optimised tree in build/release (or $BUILD_DIR). Extra arguments go to
# `cmake --build` (e.g. --target devin-orch).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${BUILD_DIR:-build/release}
if [ ! -f "$build_dir/build.ninja" ]; then
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" >/dev/null
fi
cmake --build "$build_dir" --parallel "$(nproc)" "$@"
