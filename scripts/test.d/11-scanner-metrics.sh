#!/usr/bin/env bash
# The scanner against the real release binary: every scanner family of SPEC §5 is in /metrics
# with every label combination from start, the workers scan, /healthz reports a failed worker,
# events.jsonl is written, and bad --scan.* values name the flag.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${MCESCAN_BIN:-.build/release/mcescan-exporter}
dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT
fail() { echo "scanner-metrics: FAILED: $*" >&2; exit 1; }

start() {  # name, flags...; sets $port and appends to $pids
  local name=$1; shift
  "$bin" --web.listen-address 127.0.0.1:0 --state.dir "$dir/$name-state" "$@" </dev/null >"$dir/$name.out" 2>"$dir/$name.log" &
  pids+=($!)
  port=
  for _ in $(seq 100); do
    port=$(grep -o 'msg=listening address=127.0.0.1:[0-9]*' "$dir/$name.log" | head -1 | sed 's/.*://') || true
    [ -n "$port" ] && return
    sleep 0.1
  done
  cat "$dir/$name.log" >&2; fail "$name did not start"
}

# 1. One node, fast wakes, small arena; every series (--metrics.detail full).
start live --scan.sleep-millisecs 50 --scan.arena-bytes 4MiB --scan.pages-to-scan 1024 --scan.nodes 0 --metrics.detail full
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$port/metrics" > "$dir/m.txt"
  grep -qE '^mcescan_full_scans_total\{node="0"\} [1-9]' "$dir/m.txt" && break
  sleep 0.1
done
grep -qE '^mcescan_full_scans_total\{node="0"\} [1-9]' "$dir/m.txt" || fail "no full scan within 10 s"
promtool check metrics < "$dir/m.txt" || fail "promtool findings"
count() { grep -cE "^$1(\{| )" "$dir/m.txt" || true; }
expect() { [ "$(count "$1")" = "$2" ] || fail "$1: $(count "$1") series, expected $2"; grep -q "^# TYPE $1 " "$dir/m.txt" || grep -q "^# TYPE ${1%_total} " "$dir/m.txt" || fail "$1: no TYPE"; }
for f in scanned_pages_total scanned_bytes_total corrupted_words_total poisoned_pages_total replaced_pages_total \
         region_bytes region_locked_bytes region_misplaced_bytes memory_type_available config_memory_type_enabled; do
  expect "mcescan_$f" 3
done
expect mcescan_bit_flips_total 6
for f in full_scans_total wakeups_total scan_cpu_seconds_total last_full_scan_timestamp_seconds node_memory_bytes \
         config_pages_to_scan config_scan_sleep_seconds; do
  expect "mcescan_$f" 1
done
expect mcescan_sigbus_total 5
expect mcescan_scan_backoffs_total 3
expect mcescan_worker_state 4
expect mcescan_injected_faults_total 2
[ "$(count mcescan_wake_duration_seconds_count)" = 1 ] || fail "wake_duration_seconds histogram missing"
grep -q '^mcescan_worker_state{node="0",state="running"} 1' "$dir/m.txt" || fail "worker not running"
grep -q '^mcescan_region_bytes{memory_type="arena",node="0"} 4194304' "$dir/m.txt" || fail "arena region_bytes"
grep -q '^mcescan_config_pages_to_scan{node="0"} 1024' "$dir/m.txt" || fail "config_pages_to_scan"
if [ -r /proc/self/pagemap ] && [ "$(id -u)" = 0 ]; then
  [ "$(count mcescan_coverage_ratio)" = 1 ] || fail "coverage_ratio missing although pagemap gives PFNs (root)"
fi
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthz")" = 200 ] || fail "/healthz not 200"
[ -f "$dir/live-state/events.jsonl" ] || fail "events.jsonl not created"
[ "$(stat -c %a "$dir/live-state")" = 700 ] || fail "state dir not 0700"
kill -TERM "${pids[0]}"; wait "${pids[0]}" || fail "exit status $? after SIGTERM"

# 1b. The same at the default detail (basic): the full-only families are gone, bit flips are
# summed over memory_type, the wake histogram keeps only +Inf, _sum and _count.
start basic --scan.sleep-millisecs 50 --scan.arena-bytes 4MiB --scan.pages-to-scan 1024 --scan.nodes 0
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$port/metrics" > "$dir/m.txt"
  grep -qE '^mcescan_full_scans_total\{node="0"\} [1-9]' "$dir/m.txt" && break
  sleep 0.1
done
promtool check metrics < "$dir/m.txt" || fail "promtool findings (basic)"
for f in scanned_bytes_total region_locked_bytes region_misplaced_bytes memory_type_available config_memory_type_enabled; do
  [ "$(count "mcescan_$f")" = 0 ] || fail "mcescan_$f exported at basic"
done
for f in scanned_pages_total corrupted_words_total poisoned_pages_total replaced_pages_total region_bytes; do
  expect "mcescan_$f" 3
done
expect mcescan_bit_flips_total 2
grep -qE '^mcescan_bit_flips_total\{direction="0to1",node="0"\} ' "$dir/m.txt" || fail "bit_flips_total at basic is not {direction,node}"
[ "$(count mcescan_wake_duration_seconds_bucket)" = 1 ] && grep -q '^mcescan_wake_duration_seconds_bucket{node="0",le="+Inf"} ' "$dir/m.txt" \
  || fail "wake_duration_seconds at basic: $(count mcescan_wake_duration_seconds_bucket) buckets, expected only +Inf"
[ "$(count mcescan_wake_duration_seconds_count)" = 1 ] && [ "$(count mcescan_wake_duration_seconds_sum)" = 1 ] || fail "wake_duration_seconds _sum/_count at basic"
kill -TERM "${pids[-1]}"; wait "${pids[-1]}" || fail "exit status $? after SIGTERM (basic)"

# 2. Fixture topology with nodes this host does not have: their workers fail, /healthz says so.
start fixture --path.sysfs Tests/Fixtures/topology/three-node/sys --path.procfs Tests/Fixtures/topology/three-node/proc \
  --scan.arena-bytes 1MiB --scan.sleep-millisecs 1000
for _ in $(seq 50); do
  code=$(curl -s -o "$dir/h.json" -w '%{http_code}' "http://127.0.0.1:$port/healthz")
  [ "$code" = 503 ] && break
  sleep 0.1
done
[ "$code" = 503 ] || fail "/healthz $code with failed workers, expected 503"
grep -q '"code":"worker_failed"' "$dir/h.json" && grep -q 'node 1' "$dir/h.json" || fail "503 body does not name the failed worker: $(cat "$dir/h.json")"

# 3. Bad values name the flag and the range; an unknown node stops start-up.
for args in "--scan.pages-to-scan 4194305|--scan.pages-to-scan" "--scan.type 8|--scan.type" "--scan.arena-bytes 1XB|--scan.arena-bytes" \
            "--scan.free-reserve-ratio 2|--scan.free-reserve-ratio" "--scan.coverage-window 10|--scan.coverage-window" "--scan.nodes 1-|--scan.nodes"; do
  flags=${args%%|*}; name=${args##*|}
  if "$bin" $flags --state.dir "$dir/x" >"$dir/bad.out" 2>&1 </dev/null; then fail "$flags was accepted"; fi
  grep -q -- "$name" "$dir/bad.out" || fail "$flags: message does not name $name: $(head -2 "$dir/bad.out")"
done
set +e
"$bin" --web.listen-address 127.0.0.1:0 --scan.nodes 0,63 --state.dir "$dir/x" >"$dir/bad.out" 2>&1 </dev/null
rc=$?
set -e
[ "$rc" = 2 ] && grep -q "node 63 does not exist" "$dir/bad.out" || fail "--scan.nodes 63: rc $rc, $(tail -1 "$dir/bad.out")"
echo "scanner-metrics: all checks passed"
