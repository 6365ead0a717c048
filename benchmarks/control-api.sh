#!/usr/bin/env bash
# Control-plane benchmark (issue 4):
#  1. PATCH round trip, persist included (fsync + rename + directory fsync), against GET of the same
#     node measured in the same run on the same keep-alive connection: median and p99 of 300 each.
#  2. /metrics throughput under wrk with and without PATCHes arriving at 50/s, alternating
#     A/B/A/B runs of 5 s (10 rounds) so drift hits both; the loss is 1 - the median of the
#     per-round ratios B/A (paired, so slow drift of the machine cancels).
# The workers are parked (--scan.pages-to-scan 0) and the PATCHes change scan_sleep_millisecs, so
# the scanner's own memory traffic does not blur what the control plane costs.
# usage: benchmarks/control-api.sh [BINARY]   (default: the release build)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-.build/release/mcescan-exporter}
[ -x "$bin" ] || swift build -c release --product mcescan-exporter
command -v wrk >/dev/null || { echo "wrk is missing: scripts/setup --bench"; exit 2; }
dir=$(mktemp -d)
"$bin" --web.listen-address 127.0.0.1:0 --state.dir "$dir/state" --scan.pages-to-scan 0 --no-collector.hwpoison \
  </dev/null 2>"$dir/log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
port=""
for _ in $(seq 1 100); do
  port=$(sed -n 's/.*msg=listening address=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$dir/log" | head -1); [ -n "$port" ] && break; sleep 0.1
done
echo "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), state dir on $(df --output=fstype "$dir" | tail -1)"

python3 - "$port" "$pid" <<'PY'
import http.client, json, os, statistics, sys, time
port, daemon = int(sys.argv[1]), sys.argv[2]
tick = os.sysconf("SC_CLK_TCK")
def daemon_cpu():
    f = open(f"/proc/{daemon}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / tick
c = http.client.HTTPConnection("127.0.0.1", port)
def timed(method, path, body=None):
    headers = {"Content-Type": "application/json"} if body is not None else {}
    t = time.perf_counter(); c.request(method, path, body=body, headers=headers); r = c.getresponse(); r.read()
    assert r.status == 200, r.status
    return (time.perf_counter() - t) * 1000
get, patch = [], []
for i in range(300):
    get.append(timed("GET", "/api/v1/nodes/0"))
    patch.append(timed("PATCH", "/api/v1/nodes/0", json.dumps({"scan_sleep_millisecs": 10000 + (i % 2)})))
q = lambda xs, p: sorted(xs)[int(p * (len(xs) - 1))]
print(f"GET   /api/v1/nodes/0: median {statistics.median(get):.3f} ms, p99 {q(get, .99):.3f} ms")
print(f"PATCH /api/v1/nodes/0: median {statistics.median(patch):.3f} ms, p99 {q(patch, .99):.3f} ms "
      f"(persisted; {statistics.median(patch) / statistics.median(get):.1f}x the GET)")
# Daemon CPU per request (utime+stime of the daemon over 1000 requests each): what 50 PATCH/s take
# from the CPU that /metrics needs, independent of this VM's noisy wall-clock throughput.
def cpu_per(method, path, body=None, n=1000):
    start = daemon_cpu()
    for i in range(n):
        timed(method, path, None if body is None else json.dumps(body(i)))
    return (daemon_cpu() - start) / n
m = cpu_per("GET", "/metrics")
pt = cpu_per("PATCH", "/api/v1/nodes/0", lambda i: {"scan_sleep_millisecs": 10000 + i % 2})
print(f"daemon CPU per request: GET /metrics {m * 1e3:.3f} ms, PATCH {pt * 1e3:.3f} ms; 50 PATCH/s use "
      f"{50 * pt * 1e3:.1f} ms of CPU per second = {50 * pt / 2 * 100:.2f}% of the 2 CPUs, "
      f"{50 * pt / (1 - 50 * pt) * 100 if 50 * pt < 1 else 100:.2f}% of one /metrics-serving CPU")
PY

patcher() {
  python3 - "$port" <<'PY' &
import http.client, json, sys, time
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]))
n, start = 0, time.perf_counter()
while time.perf_counter() - start < 6:
    c.request("PATCH", "/api/v1/nodes/0", body=json.dumps({"scan_sleep_millisecs": 10000 + n % 2}), headers={"Content-Type": "application/json"})
    r = c.getresponse(); r.read(); assert r.status == 200
    n += 1
    time.sleep(max(0, start + n / 50 - time.perf_counter()))
print(f"  (PATCHes sent: {n} in {time.perf_counter() - start:.1f} s)")
PY
}
rps() { wrk -t1 -c8 -d5s "http://127.0.0.1:$port/metrics" | awk '/Requests\/sec/{print $2}'; }
a=(); b=()
for round in $(seq 1 10); do
  a+=("$(rps)")
  patcher; ppid=$!; b+=("$(rps)"); wait $ppid
  echo "round $round: /metrics alone ${a[-1]} req/s, with 50 PATCH/s ${b[-1]} req/s"
done
python3 - "${a[@]}" "${b[@]}" <<'PY'
import statistics, sys
v = list(map(float, sys.argv[1:])); a, b = v[:len(v)//2], v[len(v)//2:]
ma, mb = statistics.median(a), statistics.median(b)
ratios = sorted(y / x for x, y in zip(a, b))
print(f"/metrics median: alone {ma:.0f} req/s, with 50 PATCH/s {mb:.0f} req/s; per-round ratios with/alone "
      f"{', '.join(f'{r:.2f}' for r in ratios)}; median ratio {statistics.median(ratios):.3f}: "
      f"loss {(1 - statistics.median(ratios)) * 100:.1f}%")
PY
