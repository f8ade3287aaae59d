#!/usr/bin/env bash
# Runs lintian, Debian's package checker, on the .deb that packaging_deb built and kept: no
# error may remain, nor any of the tags the package once had (no copyright, changelog or man
# page; a maintainer address at a bogus host), nor any warning outside the list below.
# Usage: lintian_deb.sh DEB_DIR
set -euo pipefail

deb_dir=${1:?directory holding the .deb}
command -v lintian >/dev/null 2>&1 || { echo "lintian_deb: lintian is missing (scripts/setup.sh installs it)" >&2; exit 2; }
shopt -s nullglob
debs=("$deb_dir"/*.deb)
[ ${#debs[@]} -eq 1 ] || { echo "lintian_deb: expected one .deb in $deb_dir, got ${#debs[@]} (did packaging_deb pass?)" >&2; exit 2; }
deb=${debs[0]}

# Tags this package had before it carried these files; each must stay gone whatever its level.
fixed=(no-copyright-file no-changelog bogus-mail-host no-manual-page)
# Warnings that stay, each with its reason. Empty today: any warning fails the test.
allowed_warnings=()

# Info tags too, so a fixed tag is caught even if lintian demotes it one day. --fail-on none:
# the verdict is ours, from the tags below; any other exit status is lintian failing to run.
status=0
output=$(lintian --display-info --tag-display-limit 0 --fail-on none "$deb" 2>&1) || status=$?
echo "$output"
tags=$(sed -n 's/^\([EWIP]\): devin-orch[^:]*: \([a-z0-9+.-]*\).*/\1 \2/p' <<<"$output")

failures=0
fail() { echo "lintian_deb: FAIL: $*" >&2; failures=$((failures + 1)); }
while read -r level tag; do
  [ -n "$tag" ] || continue
  if [[ " ${fixed[*]} " == *" $tag "* ]]; then
    fail "$tag is back"
  elif [ "$level" = E ]; then
    fail "error $tag"
  elif [ "$level" = W ] && [[ " ${allowed_warnings[*]} " != *" $tag "* ]]; then
    fail "warning $tag"
  fi
done <<<"$tags"
[ "$status" -eq 0 ] || fail "lintian exited $status"

if [ "$failures" -ne 0 ]; then
  echo "lintian_deb: $failures problem(s) in $(basename "$deb")" >&2
  exit 1
fi
echo "lintian_deb: $(basename "$deb"): no error, no warning ($(grep -c . <<<"$tags" || true) info/pedantic tags above)"
