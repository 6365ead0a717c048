#!/usr/bin/env bash
# Verify throughput of the C scan kernel on one thread, side by side with its references:
#  - mcescan-bench-kernel (release): plain vectorized read (mcescan_read_reference), verify,
#    fault-safe verify over 4 KiB pages, fill; all on one prefaulted buffer, interleaved in 16 MiB
#    segments so they share the same background load. Goal: verify >= 0.90x the plain read.
#  - stressapptest -M 1024 -s 10 -c 1 -m 0: one check-only thread (-c, read-only Adler check; not in
#    --help of 1.0.6 but parsed by it), no copy threads. Run before and after the kernel bench; the
#    mean of the two is the peer figure. Goal: verify >= 1.5x its "Data Check" rate.
# stressapptest reports MB as 2^20 bytes; everything here is converted to GB/s = 1e9 B/s.
# --clock thread times the kernels by thread CPU time (for a busy host, where wall-clock rates are
# mostly scheduling noise); stressapptest is then rated per CPU-second of its check thread.
#
#   benchmarks/verify-throughput.sh [--bytes 1GiB] [--rounds 7] [--seconds 10] [--clock wall|thread] [--no-check]
set -euo pipefail
cd "$(dirname "$0")/.."

bytes=1GiB; rounds=7; seconds=10; clock=wall; check=1
while [ $# -gt 0 ]; do
  case "$1" in
    --bytes) bytes=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --clock) clock=$2; shift 2 ;;
    --no-check) check=0; shift ;;
    *) echo "verify-throughput: unknown option '$1' (accepted: --bytes, --rounds, --seconds, --clock, --no-check)" >&2; exit 2 ;;
  esac
done
command -v stressapptest >/dev/null || { echo "verify-throughput: stressapptest not installed (scripts/setup installs it)" >&2; exit 2; }

scratch=.build-bench-kernel
swift build -c release --scratch-path "$scratch" --product mcescan-bench-kernel >/dev/null
bench="$scratch/release/mcescan-bench-kernel"

sat_gbps() {
  # "Stats: Data Check: 81234.00M at 7812.34MB/s"  ->  GB/s
  stressapptest -M 1024 -s "$seconds" -c 1 -m 0 2>&1 | tee /dev/stderr \
    | awk '/Stats: Data Check:/ { sub("MB/s", "", $6); printf "%.3f\n", $6 * 1048576 / 1e9 }'
}

sat_cpu_gbps() {
  # The same run, normalized by the CPU time of its busiest thread (the check thread): per-thread
  # utime+stime from /proc/PID/task/TID/stat, polled every 0.1 s (the last <0.1 s of the thread is
  # missed, which flatters stressapptest slightly). Data checked / check-thread CPU seconds -> GB/s.
  local log pid tck best=0 v t
  log=$(mktemp); tck=$(getconf CLK_TCK)
  declare -A cpu=()
  stressapptest -M 1024 -s "$seconds" -c 1 -m 0 >"$log" 2>&1 & pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    for t in /proc/"$pid"/task/*; do
      v=$(awk '{ print $14 + $15 }' "$t/stat" 2>/dev/null) || continue
      [ -n "$v" ] && cpu[${t##*/}]=$v
    done
    sleep 0.1
  done
  wait "$pid" || true
  for v in "${cpu[@]}"; do [ "$v" -gt "$best" ] && best=$v; done
  awk -v tck="$tck" -v ticks="$best" '/Stats: Data Check:/ { sub("M", "", $4); if (ticks > 0) printf "%.3f\n", $4 * 1048576 / (ticks / tck) / 1e9 }' "$log"
  rm -f "$log"
}

echo "== host: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $(uname -r)"
# Wall-clock mode compares with stressapptest's own (wall-clock) rate; CPU-clock mode with its rate
# per CPU-second of the check thread.
sat_fn=sat_gbps; [ "$clock" = thread ] && sat_fn=sat_cpu_gbps
echo "== stressapptest (before)"; sat1=$($sat_fn 2>/dev/null)
echo "== mcescan-bench-kernel --bytes $bytes --rounds $rounds --clock $clock"
out=$("$bench" --bytes "$bytes" --rounds "$rounds" --clock "$clock")
echo "$out"
echo "== stressapptest (after)"; sat2=$($sat_fn 2>/dev/null)

result=$(echo "$out" | grep '^RESULT')
get() { echo "$result" | tr ' ' '\n' | awk -F= -v k="$1" '$1 == k { print $2 }'; }
read_gbps=$(get read_gbps); verify_gbps=$(get verify_gbps); safe_gbps=$(get verify_safe_gbps)
verify_ratio=$(get verify_ratio); safe_ratio=$(get safe_ratio)
sat=$(awk -v a="$sat1" -v b="$sat2" 'BEGIN { printf "%.3f", (a + b) / 2 }')
sat_ratio=$(awk -v v="$verify_gbps" -v s="$sat" 'BEGIN { if (s > 0) printf "%.3f", v / s; else print "0" }')
sat_ratio_safe=$(awk -v v="$safe_gbps" -v s="$sat" 'BEGIN { if (s > 0) printf "%.3f", v / s; else print "0" }')

echo
echo "== summary (medians; GB/s = 1e9 B/s; load now $(cut -d' ' -f1-3 /proc/loadavg))"
printf '  plain read            %7.2f GB/s\n' "$read_gbps"
printf '  verify                %7.2f GB/s   %.3fx read   %.3fx stressapptest\n' "$verify_gbps" "$verify_ratio" "$sat_ratio"
printf '  verify_safe (4 KiB)   %7.2f GB/s   %.3fx read   %.3fx stressapptest\n' "$safe_gbps" "$safe_ratio" "$sat_ratio_safe"
printf '  refill_safe (arena)   %7.2f GB/s   %.3fx read   (verify, then non-temporal rewrite, per 256 KiB chunk)\n' "$(get refill_safe_gbps)" \
  "$(awk -v a="$(get refill_safe_gbps)" -v b="$read_gbps" 'BEGIN { printf "%.3f", a / b }')"
printf '  fill                  %7.2f GB/s\n' "$(get fill_gbps)"
printf '  stressapptest -c 1    %7.2f GB/s   (runs: %s, %s; %s)\n' "$sat" "$sat1" "$sat2" \
  "$([ "$clock" = wall ] && echo "its wall-clock rate" || echo "per CPU-second of its check thread")"

[ "$check" = 1 ] || exit 0
ok=1
awk -v r="$verify_ratio" 'BEGIN { exit !(r >= 0.90) }' || { echo "verify-throughput: verify/read $verify_ratio < 0.90"; ok=0; }
awk -v r="$safe_ratio" 'BEGIN { exit !(r >= 0.90) }' || { echo "verify-throughput: verify_safe/read $safe_ratio < 0.90"; ok=0; }
awk -v r="$sat_ratio" 'BEGIN { exit !(r >= 1.5) }' || { echo "verify-throughput: verify/stressapptest $sat_ratio < 1.5"; ok=0; }
[ "$ok" = 1 ] && echo "verify-throughput: goals met (>= 0.90x read, >= 1.5x stressapptest)" || exit 1
