#!/usr/bin/env bash
# Proves scripts/check-unit.sh can fail: a typo the unit loader merely warns about, a missing
# binary and a weakly sandboxed unit must each be rejected, with the reason in the output.
# Usage: check_unit_selftest.sh CHECK_UNIT_SCRIPT DEVIN_ORCH_BINARY UNIT
set -euo pipefail

check=${1:?check-unit.sh}
binary=${2:?devin-orch binary}
unit=${3:?unit file}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0

expect_failure() { # name expected-text unit-file [extra args]
  local name=$1 expected=$2 file=$3
  shift 3
  local output rc=0
  output=$("$check" --binary "$binary" --unit "$file" "$@" 2>&1) || rc=$?
  if [ "$rc" -ne 0 ] && grep -qF -- "$expected" <<<"$output"; then
    echo "selftest: ok: $name (exit $rc)"
  else
    echo "selftest: FAIL: $name: expected a failure mentioning '$expected', got exit $rc:" >&2
    printf '%s\n' "$output" >&2
    failures=$((failures + 1))
  fi
}

mkdir -p "$work/typo" "$work/weak" "$work/strict" "$work/noexec"
# A misspelt key is only a warning to systemd, which then runs the service without it.
sed 's/^ProtectSystem=strict$/ProtectSytem=strict/' "$unit" >"$work/typo/devin-orch.service"
grep -q '^ProtectSytem=' "$work/typo/devin-orch.service"
expect_failure "misspelt key" "Unknown key" "$work/typo/devin-orch.service"

# The sandbox stripped: verify is happy, the exposure is not.
sed -E '/^(NoNewPrivileges|CapabilityBoundingSet|ProtectSystem|ProtectHome|PrivateTmp|PrivateDevices|PrivateUsers|SystemCallFilter|RestrictAddressFamilies|DynamicUser|ProtectKernel[A-Za-z]*)=/d' \
  "$unit" >"$work/weak/devin-orch.service"
expect_failure "no sandbox" "above the threshold" "$work/weak/devin-orch.service"

# The real unit against a threshold it cannot meet: the comparison itself works.
expect_failure "threshold 0.5" "above the threshold 0.5" "$unit" --threshold 0.5

# An ExecStart that is not the devin-orch the check can point at the build.
sed 's#^ExecStart=/usr/bin/devin-orch#ExecStart=/usr/local/bin/other#' "$unit" >"$work/noexec/devin-orch.service"
expect_failure "foreign ExecStart" "no ExecStart=/usr/bin/devin-orch" "$work/noexec/devin-orch.service"

[ "$failures" -eq 0 ] && echo "selftest: all cases rejected as expected" || exit 1
