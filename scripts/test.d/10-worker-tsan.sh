#!/usr/bin/env bash
# The WorkerTests under ThreadSanitizer (own scratch path .build-tsan). Fails on any test failure
# and on any "WARNING: ThreadSanitizer" report, even when the tests pass.
set -euo pipefail
cd "$(dirname "$0")/../.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
SWIFT_BACKTRACE=enable=no swift test --scratch-path .build-tsan --sanitize thread --filter WorkerTests 2>&1 | tee "$log" || status=$?
if grep -q "WARNING: ThreadSanitizer" "$log"; then
  echo "worker-tsan: ThreadSanitizer reported $(grep -c 'WARNING: ThreadSanitizer' "$log") problem(s)" >&2
  exit 1
fi
[ "$status" -eq 0 ] || { echo "worker-tsan: WorkerTests failed under TSan (exit $status)" >&2; exit 1; }
grep -qE "Test run with [0-9]+ tests? .*passed" "$log" || { echo "worker-tsan: no passing Swift Testing run reported" >&2; exit 1; }
echo "worker-tsan: WorkerTests passed under ThreadSanitizer with no reports"
