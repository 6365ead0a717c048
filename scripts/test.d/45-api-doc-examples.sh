#!/usr/bin/env bash
# Every curl example of docs/api.md runs against a live daemon and must answer what the doc says;
# then docs/api/openapi.yaml is checked against the same daemon.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${MCESCAN_BIN:?MCESCAN_BIN must name the release binary}
dir=$(mktemp -d)
"$bin" --web.listen-address 127.0.0.1:0 --state.dir "$dir/state" --scan.arena-bytes 4MiB \
  --control.enable-fault-injection --no-collector.hwpoison </dev/null 2>"$dir/log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
port=""
for _ in $(seq 1 100); do
  port=$(sed -n 's/.*msg=listening address=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$dir/log" | head -1)
  [ -n "$port" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$dir/log"; exit 1; }
  sleep 0.1
done
# Let the worker finish its first pass so the examples see a running node with statistics.
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$port/mcescan/node0/full_scans" | grep -qv '^0$' && break
  sleep 0.1
done
python3 scripts/check-doc-examples.py docs/api.md "http://127.0.0.1:$port"

# docs/api/openapi.yaml is valid OpenAPI 3.1 and matches the server (statuses, schemas, methods).
python3 scripts/check-openapi.py docs/api/openapi.yaml "http://127.0.0.1:$port"
