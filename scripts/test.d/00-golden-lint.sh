#!/usr/bin/env bash
# The encoder's golden files must satisfy the real judges too: promtool (no findings) for 0.0.4,
# and the Python prometheus_client text and OpenMetrics parsers.
set -euo pipefail
cd "$(dirname "$0")/../.."
g=Tests/ExpositionFormatTests/Golden
out=$(promtool check metrics < "$g/sample-0.0.4.txt" 2>&1) && rc=0 || rc=$?
if [ "$rc" != 0 ] || [ -n "$out" ]; then echo "$out"; echo "promtool rc=$rc on $g/sample-0.0.4.txt"; exit 1; fi
echo "promtool check metrics $g/sample-0.0.4.txt: clean"
python3 scripts/parse-exposition.py "$g/sample-0.0.4.txt" "$g/sample-openmetrics.txt"
