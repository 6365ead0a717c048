#!/usr/bin/env bash
# The real daemon at its default scan knobs (4096 pages every 10 s, arena,free, 64 MiB arena):
# CPU per GiB verified in steady state, from its own /metrics. The first full scan (arena
# allocation, mlock, first fill) is left out: the window starts at the first scrape after
# mcescan_full_scans_total reaches 1.
#
#   benchmarks/daemon-defaults.sh [SECONDS]   (default 300: 30 wakes, 480 MiB per node)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-300}
[[ "$seconds" =~ ^[0-9]+$ ]] && [ "$seconds" -ge 30 ] || { echo "daemon-defaults: SECONDS must be a whole number >= 30, got '$seconds'" >&2; exit 2; }
swift build -c release --scratch-path .build-bench-daemon --product mcescan-exporter >/dev/null
bin=.build-bench-daemon/release/mcescan-exporter
dir=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
# --metrics.detail full: the bytes verified per type come from mcescan_scanned_bytes_total.
"$bin" --web.listen-address 127.0.0.1:0 --state.dir "$dir/state" --scan.nodes 0 --metrics.detail full </dev/null >"$dir/out" 2>"$dir/log" &
pid=$!
port=
for _ in $(seq 100); do
  port=$(grep -o 'msg=listening address=127.0.0.1:[0-9]*' "$dir/log" | head -1 | sed 's/.*://') || true
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { cat "$dir/log" >&2; echo "daemon-defaults: the daemon did not start" >&2; exit 1; }
# sum of a family's samples for node 0 (and memory type $2 when given)
metric() { curl -fsS "http://127.0.0.1:$port/metrics" | awk -v n="$1" -v t="${2:-}" '$1 ~ "^"n"[{]" && $1 ~ /node="0"/ && (t == "" || index($1, "memory_type=\""t"\"")) { s += $2 } END { printf "%.9f\n", s }'; }
echo "== host: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $(uname -r); daemon pid $pid, port $port"
for _ in $(seq 600); do
  [ "$(metric mcescan_full_scans_total)" != "0.000000000" ] && break
  sleep 1
done
c0=$(metric mcescan_scan_cpu_seconds_total); b0=$(metric mcescan_scanned_bytes_total); w0=$(metric mcescan_wakeups_total)
a0=$(metric mcescan_scanned_bytes_total arena); f0=$(metric mcescan_scanned_bytes_total free)
echo "== window starts after the first full scan: cpu ${c0} s, ${b0} bytes, ${w0} wakes; measuring ${seconds} s"
sleep "$seconds"
c1=$(metric mcescan_scan_cpu_seconds_total); b1=$(metric mcescan_scanned_bytes_total); w1=$(metric mcescan_wakeups_total)
a1=$(metric mcescan_scanned_bytes_total arena); f1=$(metric mcescan_scanned_bytes_total free)
awk -v c0="$c0" -v c1="$c1" -v b0="$b0" -v b1="$b1" -v w0="$w0" -v w1="$w1" -v s="$seconds" \
    -v a="$(awk -v x="$a0" -v y="$a1" 'BEGIN { print y - x }')" -v f="$(awk -v x="$f0" -v y="$f1" 'BEGIN { print y - x }')" 'BEGIN {
  gib = (b1 - b0) / 1073741824; cpu = c1 - c0
  printf "RESULT wakes=%d verified_gib=%.3f arena_gib=%.3f free_gib=%.3f worker_cpu_s=%.4f cpu_per_gib=%.4f share_of_one_core=%.4f%%\n", \
    w1 - w0, gib, a / 1073741824, f / 1073741824, cpu, (gib > 0 ? cpu / gib : 0), 100 * cpu / s
}'
