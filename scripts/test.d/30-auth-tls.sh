#!/usr/bin/env bash
# Auth/TLS lane (SPEC §7), against the release binary ($MCESCAN_BIN):
#  1. a self-signed certificate (openssl) and a bcrypt user (htpasswd) in a --web.config.file;
#     curl --cacert with credentials gets 200, without 401, with a wrong password 401, plain HTTP
#     to the TLS port gets no HTTP answer; a web config with an unsupported key stops start-up with
#     exit code 2 naming the key.
#  2. in a network namespace of our own (unshare --net: its own lo, nothing on the host changes),
#     192.0.2.10 (TEST-NET-1) on lo is a non-loopback address: a POST from it without auth gets the
#     exact 403, the same POST from 127.0.0.1 does not get 403; with basic_auth_users the POST from
#     192.0.2.10 passes the guard once authenticated.
# Traffic goes only to addresses on this machine or inside our own namespace.
#   MCESCAN_BIN=.build/release/mcescan-exporter scripts/test.d/30-auth-tls.sh
set -euo pipefail

say() { printf '30-auth-tls: %s\n' "$*"; }
fail() { printf '30-auth-tls: FAIL: %s\n' "$*" >&2; exit 1; }

bin=${MCESCAN_BIN:-}
[ -n "$bin" ] && [ -x "$bin" ] || fail "MCESCAN_BIN must name the release binary (scripts/test sets it)"

pids=()
stop_daemons() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}

# Flags that keep the daemon's footprint small and its state out of /var/lib, where the binary
# knows them (the scan engine's flags arrive later than this lane).
extra_flags() {
  local help
  help=$("$bin" serve --help 2>&1 || true)
  case "$help" in *--state.dir*) printf -- '--state.dir\n%s\n' "$work/state" ;; esac
  case "$help" in *--scan.pages-to-scan*) printf -- '--scan.pages-to-scan\n0\n' ;; esac
  case "$help" in *--no-collector.hwpoison*) printf -- '--no-collector.hwpoison\n' ;; esac
}

# start LOG ARGS...: runs the daemon in the background; sets $ports to the bound ports (in the order
# of the listen addresses) once it has logged them.
start() {
  local log=$1; shift
  local -a more=()
  mapfile -t more < <(extra_flags)
  "$bin" serve "$@" "${more[@]}" >"$log" 2>&1 &
  pids+=($!)
  local want
  want=$(printf '%s\n' "$@" | grep -c -- '^--web.listen-address$' || true)
  for _ in $(seq 100); do
    if grep -q 'msg="access control"' "$log" 2>/dev/null; then
      mapfile -t ports < <(sed -n 's/.*msg=listening address=[^ ]*:\([0-9][0-9]*\) .*/\1/p' "$log")
      [ "${#ports[@]}" -ge "$want" ] && return 0
    fi
    kill -0 "${pids[-1]}" 2>/dev/null || { cat "$log" >&2; fail "the daemon exited at start ($*)"; }
    sleep 0.1
  done
  cat "$log" >&2
  fail "the daemon did not log its listen addresses within 10 s"
}

# code ARGS...: curl's HTTP status (000 when no HTTP answer came back).
code() { curl -sS -o /dev/null -w '%{http_code}' --max-time 10 "$@" 2>/dev/null || true; }

inside_netns() {
  ip link set lo up
  ip addr add 192.0.2.10/32 dev lo
  say "namespace: lo has $(ip -o addr show dev lo | awk '{print $4}' | paste -sd' ')"

  # No web config: reads from anywhere, mutations from loopback only.
  start "$work/open.log" --web.listen-address 192.0.2.10:0 --web.listen-address 127.0.0.1:0
  local remote=${ports[0]} local=${ports[1]}
  local c
  c=$(code --interface 192.0.2.10 "http://192.0.2.10:$remote/metrics")
  [ "$c" = 200 ] || fail "GET /metrics from 192.0.2.10 without a web config: $c, want 200"
  local body
  body=$(curl -sS --max-time 10 --interface 192.0.2.10 -X POST -w '\n%{http_code}' "http://192.0.2.10:$remote/metrics" || true)
  local want='{"error":{"code":"forbidden","message":"mutations are accepted only from loopback or with basic auth; set basic_auth_users in --web.config.file"}}'
  [ "$body" = "$want"$'\n\n'403 ] || fail "POST from 192.0.2.10: got [$body], want [$want] and 403"
  say "ok: POST /metrics from 192.0.2.10 (not loopback) without auth: 403 with the documented body"
  c=$(code -X POST "http://127.0.0.1:$local/metrics")
  [ "$c" != 403 ] && [ "$c" != 000 ] || fail "POST /metrics from 127.0.0.1: $c, want anything but 403"
  say "ok: the same POST from 127.0.0.1: $c (not 403; the guard lets loopback through to the routes)"
  c=$(code -X POST -H 'Host: rebinding.example' "http://127.0.0.1:$local/metrics")
  [ "$c" = 403 ] || fail "POST from 127.0.0.1 with a foreign Host: $c, want 403"
  say "ok: a loopback POST naming a foreign Host (DNS rebinding): 403"
  stop_daemons

  # With basic_auth_users (plain HTTP here): an authenticated remote peer passes the guard.
  start "$work/auth.log" --web.config.file "$work/auth-only.yml" --web.listen-address 192.0.2.10:0
  remote=${ports[0]}
  c=$(code --interface 192.0.2.10 -X POST "http://192.0.2.10:$remote/metrics")
  [ "$c" = 401 ] || fail "POST from 192.0.2.10 without credentials when users are configured: $c, want 401"
  c=$(code --interface 192.0.2.10 -X POST -u "scraper:$password" "http://192.0.2.10:$remote/metrics")
  [ "$c" != 403 ] && [ "$c" != 401 ] && [ "$c" != 000 ] || fail "authenticated POST from 192.0.2.10: $c, want neither 401 nor 403"
  say "ok: with basic_auth_users, POST from 192.0.2.10: 401 without credentials, $c (past the guard) with them"
  stop_daemons
}

if [ "${1:-}" = --inside-netns ]; then
  work=$2
  password=$3
  trap stop_daemons EXIT
  inside_netns
  exit 0
fi

for tool in openssl htpasswd curl ip unshare; do
  command -v "$tool" >/dev/null || fail "$tool is missing (scripts/setup installs it)"
done
work=$(mktemp -d /tmp/mcescan-auth-tls.XXXXXX)
trap 'stop_daemons; rm -rf "$work"' EXIT

password='correct horse battery'
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
  -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
chmod 600 "$work/key.pem"
hash=$(htpasswd -nbBC 10 scraper "$password" | head -n1 | cut -d: -f2-)
cat >"$work/web.yml" <<EOF
# paths are relative to this file
tls_server_config:
  cert_file: cert.pem
  key_file: key.pem
basic_auth_users:
  scraper: '$hash'
EOF
cat >"$work/auth-only.yml" <<EOF
basic_auth_users:
  scraper: '$hash'
EOF
cat >"$work/bad.yml" <<EOF
tls_server_config:
  cert_file: cert.pem
  key_file: key.pem
  client_auth_type: RequireAndVerifyClientCert
EOF

# 1. TLS and basic auth on 127.0.0.1.
start "$work/tls.log" --web.config.file "$work/web.yml" --web.listen-address 127.0.0.1:0
port=${ports[0]}
line=$(grep 'msg="access control"' "$work/tls.log" || true)
case "$line" in *basic_auth=on*tls=on*) say "start-up log: ${line#*msg=}" ;; *) cat "$work/tls.log" >&2; fail "no access control log line with tls=on basic_auth=on" ;; esac
url="https://localhost:$port/metrics"
pin=(--resolve "localhost:$port:127.0.0.1")
c=$(code "${pin[@]}" --cacert "$work/cert.pem" -u "scraper:$password" "$url")
[ "$c" = 200 ] || fail "curl --cacert with credentials: $c, want 200"
say "ok: https with --cacert and credentials: 200"
body=$(curl -sS --max-time 10 "${pin[@]}" --cacert "$work/cert.pem" -u "scraper:$password" "$url")
grep -q '^# TYPE ' <<<"$body" || fail "the authenticated body is not an exposition"
c=$(code "${pin[@]}" --cacert "$work/cert.pem" "$url")
[ "$c" = 401 ] || fail "without credentials: $c, want 401"
headers=$(curl -sS -D - -o /dev/null --max-time 10 "${pin[@]}" --cacert "$work/cert.pem" "$url" || true)
grep -qi '^WWW-Authenticate: Basic realm="mcescan-exporter"' <<<"$headers" || fail "401 without WWW-Authenticate: $headers"
say "ok: without credentials: 401 with WWW-Authenticate"
c=$(code "${pin[@]}" --cacert "$work/cert.pem" -u "scraper:wrong" "$url")
[ "$c" = 401 ] || fail "wrong password: $c, want 401"
say "ok: wrong password: 401"
c=$(code "${pin[@]}" --cacert "$work/cert.pem" -u "scraper:$password" "https://localhost:$port/healthz")
[ "$c" = 200 ] || fail "/healthz with credentials: $c, want 200"
if curl -sS -o /dev/null --max-time 10 -u "scraper:$password" "http://127.0.0.1:$port/metrics" 2>/dev/null; then
  fail "plain HTTP to the TLS port was answered"
fi
say "ok: plain http to the TLS port: no HTTP answer"
if curl -sS -o /dev/null --max-time 10 "${pin[@]}" -u "scraper:$password" "$url" 2>/dev/null; then
  fail "a client without the CA accepted the self-signed certificate"
fi
say "ok: without --cacert the certificate is not trusted"
stop_daemons

# A web config with an unsupported setting: exit code 2, the key named.
rc=0
"$bin" serve --web.config.file "$work/bad.yml" --web.listen-address 127.0.0.1:0 >"$work/bad.log" 2>&1 || rc=$?
[ "$rc" = 2 ] || { cat "$work/bad.log" >&2; fail "a bad web config exited $rc, want 2"; }
grep -q 'tls_server_config.client_auth_type' "$work/bad.log" || { cat "$work/bad.log" >&2; fail "the error does not name the key"; }
say "ok: unsupported client_auth_type: exit 2, key named: $(grep -o 'key=[^ ]*' "$work/bad.log" | head -n1)"

# 2. Non-loopback peers, in a network namespace of our own.
if [ "$(id -u)" = 0 ]; then ns=(unshare --net); else ns=(unshare --net --map-root-user); fi
"${ns[@]}" bash "$0" --inside-netns "$work" "$password" || fail "the non-loopback checks failed"
say "all checks passed"
