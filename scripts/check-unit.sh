#!/usr/bin/env bash
# Checks the systemd unit offline: `systemd-analyze verify` must print nothing about it, and
# `systemd-analyze security` must rate its exposure at or below a threshold (default 2.0).
#
# Usage: scripts/check-unit.sh [--binary PATH] [--unit PATH] [--threshold N.N]
#   --binary     the devin-orch to put in ExecStart (verify insists that it exists);
#                default: build/devin-orch, else /usr/bin/devin-orch
#   --unit       the unit file to check (default: systemd/devin-orch.service)
#   --threshold  highest acceptable overall exposure, 0.0 .. 10.0 (default 2.0)
# Exit status: 0 pass, 1 a check failed, 2 bad usage or a missing tool.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
unit="$repo/systemd/devin-orch.service"
binary=""
threshold="2.0"

while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary=${2:?--binary needs a path}; shift 2 ;;
    --unit) unit=${2:?--unit needs a path}; shift 2 ;;
    --threshold) threshold=${2:?--threshold needs a number}; shift 2 ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "check-unit: unknown argument: $1" >&2; exit 2 ;;
  esac
done

if [ -z "$binary" ]; then
  for candidate in "$repo/build/devin-orch" /usr/bin/devin-orch; do
    if [ -x "$candidate" ]; then binary=$candidate; break; fi
  done
fi
if [ -z "$binary" ] || [ ! -x "$binary" ]; then
  echo "check-unit: devin-orch binary not found or not executable: ${binary:-<none>} (use --binary)" >&2
  exit 2
fi
if [ ! -f "$unit" ]; then
  echo "check-unit: unit file not found: $unit" >&2
  exit 2
fi
if ! [[ "$threshold" =~ ^[0-9]+(\.[0-9])?$ ]]; then
  echo "check-unit: --threshold must look like 2.0, got: $threshold" >&2
  exit 2
fi

# A missing tool is a failure, never a silent pass: CI installs `systemd` via scripts/setup.sh.
if ! command -v systemd-analyze >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "check-unit: installing systemd (for systemd-analyze)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd >/dev/null
  else
    echo "check-unit: systemd-analyze is missing; apt-get install systemd (scripts/setup.sh does)" >&2
    exit 2
  fi
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Keep the unit's file name: verify and security report by unit name.
checked="$work/$(basename "$unit")"
binary=$(realpath "$binary")
# Only the program of ExecStart= changes; its arguments, and every other line, are checked as
# shipped. A '#' in the path would break the sed expression, so refuse it.
case "$binary" in *'#'*) echo "check-unit: binary path contains '#': $binary" >&2; exit 2 ;; esac
sed -E "s#^(ExecStart=[-@:+!]*)/usr/bin/devin-orch([[:space:]]|\$)#\1${binary}\2#" "$unit" >"$checked"
if ! grep -E '^ExecStart=' "$checked" | grep -qF "$binary"; then
  echo "check-unit: no ExecStart=/usr/bin/devin-orch line to point at the built binary in $unit" >&2
  exit 1
fi

status=0

# verify exits 0 on many real mistakes (unknown keys, unparsable values are "ignoring" warnings),
# so any line about this unit counts as an error. Lines about other units (the host's own, pulled
# in through targets) are shown but do not fail the check.
unit_name=$(basename "$unit")
set +e
verify_output=$(systemd-analyze verify --man=no "$checked" 2>&1)
verify_rc=$?
set -e
own_lines=$(printf '%s\n' "$verify_output" | grep -F -e "$checked" -e "$unit_name" || true)
other_lines=$(printf '%s\n' "$verify_output" | grep -v -F -e "$checked" -e "$unit_name" | grep -v '^$' || true)
if [ -n "$other_lines" ]; then
  printf 'check-unit: note, about other units (ignored):\n%s\n' "$other_lines" >&2
fi
if [ "$verify_rc" -ne 0 ] || [ -n "$own_lines" ]; then
  printf 'check-unit: FAIL verify (exit %s):\n%s\n' "$verify_rc" "${own_lines:-$verify_output}" >&2
  status=1
else
  echo "check-unit: verify OK"
fi

set +e
security_output=$(systemd-analyze security --offline=yes "$checked" 2>&1)
security_rc=$?
set -e
score=$(printf '%s\n' "$security_output" | sed -nE 's/.*Overall exposure level for [^:]*: ([0-9]+\.[0-9]+).*/\1/p' | tail -n1)
if [ -z "$score" ]; then
  printf 'check-unit: FAIL security: no overall exposure level in the output (exit %s):\n%s\n' \
    "$security_rc" "$security_output" >&2
  exit 1
fi
# Compare in tenths: both numbers have at most one decimal.
to_tenths() { local whole=${1%%.*} frac=0; [[ "$1" == *.* ]] && frac=${1#*.}; echo $((10#$whole * 10 + 10#${frac:0:1})); }
if [ "$(to_tenths "$score")" -gt "$(to_tenths "$threshold")" ]; then
  printf '%s\n' "$security_output" | grep -E '^✗' >&2 || true
  echo "check-unit: FAIL security: exposure $score is above the threshold $threshold" >&2
  status=1
else
  echo "check-unit: security OK: exposure $score (threshold $threshold)"
  # What still counts against the score, so a regression is easy to spot in the log.
  printf '%s\n' "$security_output" | grep -E '^✗' | sed 's/^/check-unit:   /' || true
fi

exit "$status"
