#!/usr/bin/env bash
# What access control costs per request, as ratios against plain HTTP measured in the same run.
# Starts the release binary on 127.0.0.1:0 once per case and runs wrk (keep-alive) against it;
# reports requests/s and the daemon's own CPU time per request (from /proc/PID/stat), both also as
# ratios against the plain case:
#   plain        no --web.config.file
#   auth         basic_auth_users (bcrypt cost 10), right password: served from the verified cache
#   tls          tls_server_config only
#   tls+auth     both
#   plain/new    no config, "Connection: close": a new TCP connection per request (reference for:)
#   tls+auth/new both, "Connection: close": a new connection and TLS handshake per request
#   auth/miss    basic_auth_users, WRONG password, one connection: every request runs bcrypt
#                (the cost the cache saves; one connection so the bcrypt gate never answers 429)
#   MCESCAN_BIN=.build/release/mcescan-exporter benchmarks/auth-tls.sh [seconds-per-case] [path]
set -euo pipefail

bin=${MCESCAN_BIN:-}
[ -n "$bin" ] && [ -x "$bin" ] || { echo "auth-tls: set MCESCAN_BIN to the release binary" >&2; exit 2; }
seconds=${1:-5}
path=${2:-/healthz}
for tool in wrk openssl htpasswd curl; do
  command -v "$tool" >/dev/null || { echo "auth-tls: $tool missing (scripts/setup --bench)" >&2; exit 2; }
done

work=$(mktemp -d /tmp/mcescan-auth-bench.XXXXXX)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
hash=$(htpasswd -nbBC 10 bench secret | head -n1 | cut -d: -f2-)
printf 'basic_auth_users:\n  bench: %s\n' "'$hash'" >"$work/auth.yml"
printf 'tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n' >"$work/tls.yml"
cat "$work/tls.yml" "$work/auth.yml" >"$work/both.yml"
good="Authorization: Basic $(printf 'bench:secret' | base64)"
bad="Authorization: Basic $(printf 'bench:wrong' | base64)"

extra=()
help=$("$bin" serve --help 2>&1 || true)
case "$help" in *--state.dir*) extra+=(--state.dir "$work/state") ;; esac
case "$help" in *--scan.pages-to-scan*) extra+=(--scan.pages-to-scan 0) ;; esac

# run NAME CONFIG(or -) SCHEME CONNECTIONS HEADER...
run() {
  local name=$1 config=$2 scheme=$3 conns=$4; shift 4
  local log="$work/${name//\//-}.log"
  local args=(serve --web.listen-address 127.0.0.1:0 "${extra[@]}")
  [ "$config" != - ] && args+=(--web.config.file "$work/$config")
  "$bin" "${args[@]}" >"$log" 2>&1 &
  pid=$!
  local port=
  for _ in $(seq 100); do
    port=$(sed -n 's/.*msg=listening address=[^ ]*:\([0-9][0-9]*\) .*/\1/p' "$log" | head -n1)
    [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || { cat "$log" >&2; exit 1; }
  local hdr=()
  for h in "$@"; do hdr+=(-H "$h"); done
  # One request first, as a scraper's steady state: the password is then in the verified cache
  # (without this, wrk's other connections get 429 while the first bcrypt runs).
  curl -ks -o /dev/null "${hdr[@]}" "$scheme://127.0.0.1:$port$path" || true
  local out
  out=$(wrk -t1 -c"$conns" -d"${seconds}s" "${hdr[@]}" "$scheme://127.0.0.1:$port$path")
  # The daemon's CPU time (utime + stime, clock ticks) per request: less sensitive to other load on
  # the machine than requests per second.
  local ticks
  ticks=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  local rps non2xx requests
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' <<<"$out")
  printf '%s %s %s %s\n' "$name" "$rps" "${non2xx:-0}" "$(awk -v t="$ticks" -v n="$requests" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", t / hz / n * 1e6 }')"
}

results=$(
  run plain - http 4
  run auth auth.yml http 4 "$good"
  run tls tls.yml https 4
  run tls+auth both.yml https 4 "$good"
  run plain/new - http 4 "Connection: close"
  run tls+auth/new both.yml https 4 "$good" "Connection: close"
  run auth/miss auth.yml http 1 "$bad"
)
plain=$(awk '$1 == "plain" {print $2}' <<<"$results")
plaincpu=$(awk '$1 == "plain" {print $4}' <<<"$results")
printf '%-14s %12s %10s %16s %12s %10s\n' case req/s "x plain" "CPU us/request" "x plain" "non-2xx"
awk -v p="$plain" -v c="$plaincpu" '{ printf "%-14s %12.1f %10.3f %16.1f %12.2f %10s\n", $1, $2, $2 / p, $4, $4 / c, $3 }' <<<"$results"
miss=$(awk '$1 == "auth/miss" {print $2, $4}' <<<"$results")
auth=$(awk '$1 == "auth" {print $2, $4}' <<<"$results")
awk -v m="$miss" -v a="$auth" 'BEGIN { split(m, M, " "); split(a, A, " ")
  printf "uncached (bcrypt cost 10) request: %.1f ms CPU, %.1f ms wall; cached: %.1f us CPU (%.0fx less)\n", M[2] / 1000, 1000 / M[1], A[2], M[2] / A[2] }'
