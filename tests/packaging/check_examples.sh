#!/usr/bin/env bash
# The examples the package ships (examples/production/) work with the built daemon: the
# configuration validates, every job of the job file is valid and is added, and the job file
# shows every field the job file reader knows, so a new field cannot go unmentioned.
# Usage: check_examples.sh DEVIN_ORCH SOURCE_DIR
# `test && ok || fail` is if-then-else here: ok only echoes, it cannot fail.
# shellcheck disable=SC2015
set -euo pipefail

binary=${1:?devin-orch binary}
source_dir=${2:?source dir}
examples="$source_dir/examples/production"

failures=0
fail() { echo "check_examples: FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { echo "check_examples: ok: $*"; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The example leaves api.org_id to the user; the key and the database come from the test.
unset CREDENTIALS_DIRECTORY DEVIN_ORCH_BASE_URL
export DEVIN_ORCH_ORG_ID=org-example-check DEVIN_API_KEY=cog_example_check \
       DEVIN_ORCH_DATABASE="$work/queue.db"

if "$binary" check-config --config "$examples/devin-orch.yaml" >"$work/check.out" 2>&1; then
  ok "check-config accepts devin-orch.yaml"
else
  cat "$work/check.out" >&2
  fail "check-config rejects examples/production/devin-orch.yaml"
fi

expected=$(grep -cE '^  - key: ' "$examples/jobs.yaml" || true)
status=0
"$binary" enqueue --config "$examples/devin-orch.yaml" --file "$examples/jobs.yaml" \
  >"$work/enqueue.out" 2>"$work/enqueue.err" || status=$?
added=$(grep -c '^added ' "$work/enqueue.out" || true)
if [ "$status" -eq 0 ] && [ "$added" -eq "$expected" ] && [ "$expected" -gt 0 ]; then
  ok "enqueue --file jobs.yaml added all $added jobs"
else
  cat "$work/enqueue.out" "$work/enqueue.err" >&2
  fail "enqueue --file jobs.yaml exited $status and added $added of $expected jobs"
fi

# The reader's list of fields (kFields in src/app/jobs/job_file.cpp): each must appear in the
# example as `field:`, in a job or in a comment that shows it.
fields=$(sed -n '/kFields{/,/};/p' "$source_dir/src/app/jobs/job_file.cpp" | grep -o '"[a-z_]*"' | tr -d '"')
[ "$(wc -w <<<"$fields")" -ge 20 ] || fail "found only $(wc -w <<<"$fields") fields in job_file.cpp's kFields"
missing=()
for field in $fields; do
  grep -qE "^ *(# *)?(- )?$field:" "$examples/jobs.yaml" || missing+=("$field")
done
[ ${#missing[@]} -eq 0 ] && ok "jobs.yaml shows all $(wc -w <<<"$fields") fields" \
  || fail "jobs.yaml does not show: ${missing[*]}"

if [ "$failures" -ne 0 ]; then
  echo "check_examples: $failures check(s) failed" >&2
  exit 1
fi
echo "check_examples: OK"
