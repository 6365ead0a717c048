#!/usr/bin/env bash
# The command line: every bad flag value is refused with exit 64 and a message naming the flag and
# what it accepts; a port in use fails start-up with exit 2; SIGTERM and SIGINT stop the daemon
# cleanly with exit 0 while a scrape is answered.
set -uo pipefail
bin=${MCESCAN_BIN:?MCESCAN_BIN must name the release binary}
fails=0
check_usage() {  # flags... ; expected message fragment is the last argument
  local want=${*: -1}; local args=("${@:1:$#-1}")
  out=$("$bin" "${args[@]}" </dev/null 2>&1 >/dev/null); rc=$?
  if [ "$rc" = 64 ] && grep -qF -- "$want" <<<"$out"; then
    echo "ok   ${args[*]} -> rc 64, '$want'"
  else
    echo "FAIL ${args[*]} -> rc $rc: $out"; fails=$((fails+1))
  fi
}
check_usage --log.level verbose "'--log.level <log.level>'. Please provide one of 'debug', 'info', 'warn' or 'error'"
check_usage --log.format xml "Please provide one of 'logfmt' and 'json'"
check_usage --web.listen-address 10120 "--web.listen-address: listen address \"10120\": expected HOST:PORT or :PORT"
check_usage --web.listen-address :99999 "port \"99999\" is not a number from 0 to 65535"
check_usage --web.listen-address ::1:80 "put an IPv6 address in brackets"
check_usage --web.max-requests 0 "--web.max-requests: 0 is out of range (1-65535)"
check_usage --web.max-requests abc "The value 'abc' is invalid for '--web.max-requests"
check_usage --web.telemetry-path metrics "--web.telemetry-path: \"metrics\" must start with '/'"
check_usage --web.telemetry-path /healthz "--web.telemetry-path"
check_usage --metrics.detail verbose "The value 'verbose' is invalid for '--metrics.detail <level>'. Please provide one of 'basic' and 'full'"
check_usage --bogus "Unknown option '--bogus'"
check_usage --scan.coverage-window 1.5h "--scan.coverage-window: \"1.5h\" is not a duration"
check_usage --scan.coverage-window 30s "--scan.coverage-window: 30s is out of range (1m-366d)"
check_usage --collector.hwpoison.interval 1h30m5x "--collector.hwpoison.interval: \"1h30m5x\" is not a duration"

# A port in use: exit 2 and a message naming the address.
python3 - "$bin" <<'PY' || fails=$((fails+1))
import socket, subprocess, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
port = s.getsockname()[1]
p = subprocess.run([sys.argv[1], "--web.listen-address", f"127.0.0.1:{port}"], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=20)
ok = p.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in p.stderr and "Address already in use" in p.stderr
print(("ok  " if ok else "FAIL") + f" port in use -> rc {p.returncode}")
if not ok: print(p.stderr); sys.exit(1)
PY

# SIGTERM / SIGINT: clean exit 0 with "stopped" logged.
for sig in TERM INT; do
  log=$(mktemp)
  "$bin" --web.listen-address 127.0.0.1:0 </dev/null 2>"$log" &
  pid=$!
  port=""
  for _ in $(seq 1 100); do
    port=$(sed -n 's/.*msg=listening address=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -1); [ -n "$port" ] && break; sleep 0.1
  done
  curl -fsS "http://127.0.0.1:$port/metrics" >/dev/null || { echo "FAIL scrape before SIG$sig"; fails=$((fails+1)); }
  kill -"$sig" "$pid"; wait "$pid"; rc=$?
  if [ "$rc" = 0 ] && grep -q 'msg=stopped' "$log"; then echo "ok   SIG$sig -> exit 0"; else echo "FAIL SIG$sig -> rc $rc"; cat "$log"; fails=$((fails+1)); fi
  rm -f "$log"
done

[ "$fails" = 0 ] || { echo "cli: $fails failures"; exit 1; }
echo "cli: all checks passed"
