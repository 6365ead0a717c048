#!/usr/bin/env bash
# Durability of acknowledged changes (SPEC §6): a real daemon gets a PATCH (or a text-view PUT), is
# killed with SIGKILL right after the 200, restarts on the same state dir and shows the change —
# several rounds. A truncated or corrupt state file stops start-up with exit 2 and a message naming
# the file, the problem and the fix, and the file is left exactly as it was. The state dir is 0700.
set -uo pipefail
cd "$(dirname "$0")/../.."
bin=${MCESCAN_BIN:?MCESCAN_BIN must name the release binary}
dir=$(mktemp -d)
state="$dir/state"
pid=""
trap '[ -n "$pid" ] && kill -9 $pid 2>/dev/null; rm -rf "$dir"' EXIT
fails=0
fail() { echo "FAIL $*"; fails=$((fails+1)); }

start() {
  : >"$dir/log"
  "$bin" --web.listen-address 127.0.0.1:0 --state.dir "$state" --scan.arena-bytes 4MiB --no-collector.hwpoison \
    </dev/null 2>"$dir/log" &
  pid=$!
  port=""
  for _ in $(seq 1 150); do
    port=$(sed -n 's/.*msg=listening address=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$dir/log" | head -1)
    [ -n "$port" ] && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

start || { cat "$dir/log"; echo "daemon did not start"; exit 1; }
mode=$(stat -c %a "$state")
[ "$mode" = 700 ] && echo "ok   state dir mode 0700" || fail "state dir mode $mode"

for round in 1 2 3 4 5; do
  pages=$((1000 * round + 7)); sleep_ms=$((round * 111)); type=$(( (round % 3) + 1 ))
  code=$(curl -s -o "$dir/resp" -w '%{http_code}' -X PATCH -H 'Content-Type: application/json' \
    -d "{\"pages_to_scan\":$pages,\"scan_sleep_millisecs\":$sleep_ms,\"type\":$type}" "http://127.0.0.1:$port/api/v1/nodes/0")
  kill -9 "$pid"; wait "$pid" 2>/dev/null; pid=""
  [ "$code" = 200 ] || fail "round $round: PATCH answered $code: $(cat "$dir/resp")"
  start || { cat "$dir/log"; fail "round $round: restart failed"; break; }
  got=$(curl -s "http://127.0.0.1:$port/api/v1/nodes/0")
  want="\"config\":{\"pages_to_scan\":$pages,\"scan_sleep_millisecs\":$sleep_ms,\"type\":$type,"
  if grep -qF "$want" <<<"$got" && grep -q 'knobs_from="state file"' "$dir/log"; then
    echo "ok   round $round: PATCH, kill -9, restart -> $pages/$sleep_ms/$type"
  else
    fail "round $round: after restart: $got"
  fi
done

# The text view is durable too.
code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT --data 2222 "http://127.0.0.1:$port/mcescan/node0/pages_to_scan")
kill -9 "$pid"; wait "$pid" 2>/dev/null; pid=""
start || fail "restart after PUT"
[ "$code" = 200 ] && [ "$(curl -s "http://127.0.0.1:$port/mcescan/node0/pages_to_scan")" = 2222 ] \
  && echo "ok   text view PUT, kill -9, restart -> 2222" || fail "text view PUT not durable (code $code)"
kill "$pid"; wait "$pid" 2>/dev/null; pid=""

# A bad state file stops start-up, names the file and the fix, and is not overwritten.
for bad in truncate garbage wrongtype; do
  cp "$state/state.json" "$dir/good.json"
  case $bad in
    truncate) head -c 25 "$dir/good.json" >"$state/state.json" ;;
    garbage) printf 'not json at all\n' >"$state/state.json" ;;
    wrongtype) printf '{"version":1,"nodes":{"0":{"pages_to_scan":"lots","scan_sleep_millisecs":1,"type":1}}}\n' >"$state/state.json" ;;
  esac
  before=$(sha256sum "$state/state.json")
  "$bin" --web.listen-address 127.0.0.1:0 --state.dir "$state" --no-collector.hwpoison </dev/null >/dev/null 2>"$dir/log" & p=$!
  ( sleep 20; kill -9 $p 2>/dev/null ) & watchdog=$!
  wait $p; rc=$?
  kill $watchdog 2>/dev/null
  after=$(sha256sum "$state/state.json")
  if [ "$rc" = 2 ] && grep -qF "state file $state/state.json" "$dir/log" && grep -q "move it away" "$dir/log" && [ "$before" = "$after" ]; then
    echo "ok   $bad state file -> exit 2, named, untouched"
  else
    fail "$bad state file -> rc $rc"; cat "$dir/log"
  fi
  cp "$dir/good.json" "$state/state.json"
done

# A temporary state file left by a killed writer is removed (and said) at start; HUP, USR1 and
# USR2 are logged and ignored; TERM stops the daemon with its name in the log.
printf '{' >"$state/state.json.tmp.4194305"
start || { cat "$dir/log"; fail "start with a stale temporary"; }
if [ ! -e "$state/state.json.tmp.4194305" ] && grep -q "removed a temporary state file" "$dir/log"; then
  echo "ok   stale state.json.tmp.PID removed at start, logged"
else
  fail "stale temporary state file not cleaned"
fi
for sig in HUP USR1 USR2; do
  kill -s "$sig" "$pid"; sleep 0.3
  if kill -0 "$pid" 2>/dev/null && [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthz")" = 200 ] \
     && grep -q "msg=\"signal ignored\".* signal=SIG$sig" "$dir/log"; then
    echo "ok   SIG$sig logged and ignored"
  else
    fail "SIG$sig: daemon gone or not logged"; tail -3 "$dir/log"
  fi
done
kill -s TERM "$pid"; wait "$pid"; rc=$?; pid=""
grep -q "msg=\"shutting down\" signal=SIGTERM" "$dir/log" && [ "$rc" = 0 ] \
  && echo "ok   SIGTERM: logged, exit 0" || { fail "SIGTERM: rc $rc"; tail -3 "$dir/log"; }

[ "$fails" = 0 ] || { echo "durability: $fails failures"; exit 1; }
echo "durability: all checks passed"
