#!/usr/bin/env bash
# The Debian package end to end. scripts/package builds the .deb; apt installs it (and its
# Depends from the mirror) into a clean Debian 12 chroot (debootstrap --variant=minbase, cached as
# .cache/package/bookworm-minbase.tar); the checks then run the installed daemon the way its
# systemd unit would (ExecStart with /etc/default/mcescan-exporter, an unprivileged UID holding
# only the unit's AmbientCapabilities, $STATE_DIRECTORY) on a free loopback port, with the
# host's sysfs and procfs mounted in the chroot, and scrape it; finally remove and purge the
# package and check nothing is left. The unit itself is checked with systemd-analyze verify and
# security, and deploy/Containerfile with scripts/check-containerfile.py. PID 1 here is not
# systemd, so systemctl never runs. Timings (cold: no cached chroot) are in docs/deploy.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
t0=$(date +%s)
say() { echo "package: $*"; }
fail() { echo "package: FAILED: $*" >&2; exit 1; }
for tool in debootstrap dpkg-deb systemd-analyze promtool curl setpriv; do
  command -v "$tool" >/dev/null || fail "'$tool' not found (run scripts/setup)"
done
[ "$(id -u)" = 0 ] || fail "needs root (chroot, mounts)"

unit=deploy/systemd/mcescan-exporter.service
work=$(mktemp -d /tmp/mcescan-package.XXXXXX)
root="$work/root"
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  for m in "$root/dev" "$root/sys" "$root/proc" "$root"; do
    if mountpoint -q "$m" 2>/dev/null; then umount "$m" || umount -l "$m"; fi
  done
  rm -rf "$work"
}
trap cleanup EXIT

# 1. The unit: systemd-analyze verify (ExecStart pointed at a file that exists here) and the
# security exposure, which must stay "OK" (below 3.0).
mkdir -p "$work/unit"
sed "s#^ExecStart=/usr/bin/mcescan-exporter#ExecStart=/bin/true#" "$unit" >"$work/unit/mcescan-exporter.service"
systemd-analyze verify "$work/unit/mcescan-exporter.service" || fail "systemd-analyze verify $unit"
exposure=$(systemd-analyze security --offline=true "$work/unit/mcescan-exporter.service" 2>/dev/null | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
[ -n "$exposure" ] && awk -v e="$exposure" 'BEGIN { exit !(e < 3.0) }' || fail "systemd-analyze security: exposure '$exposure', want < 3.0"
say "unit: systemd-analyze verify clean, security exposure $exposure"

# 2. The package.
deb=$(scripts/package | tail -1)
say "built $(basename "$deb") ($(du -h "$deb" | cut -f1)): $(dpkg-deb -f "$deb" Depends)"
# The container image's recipe, statically (no container runtime here): it passes, and a recipe
# whose COPY source is missing or whose ENTRYPOINT runs another path fails.
python3 scripts/check-containerfile.py || fail "deploy/Containerfile"
sed 's#^COPY build/mcescan-exporter #COPY build/no-such-binary #' deploy/Containerfile >"$work/Containerfile.bad-copy"
sed 's#^ENTRYPOINT \["/usr/bin/mcescan-exporter"\]#ENTRYPOINT ["/usr/local/bin/mcescan-exporter"]#' deploy/Containerfile >"$work/Containerfile.bad-entry"
for bad in bad-copy bad-entry; do
  ! cmp -s deploy/Containerfile "$work/Containerfile.$bad" || fail "the $bad mutation changed nothing"
  ! python3 scripts/check-containerfile.py --file "$work/Containerfile.$bad" >/dev/null || fail "check-containerfile.py accepted $bad"
done
t_built=$(date +%s)

# 3. A clean Debian 12 root, cached. Built on a tmpfs, where dpkg's fsyncs cost nothing.
cache=.cache/package
tarball=$cache/bookworm-minbase.tar
mkdir -p "$root"
mount -t tmpfs -o size=1200m,mode=0755 mcescan-package "$root"
if [ ! -f "$tarball" ]; then
  say "no cached chroot: debootstrap --variant=minbase bookworm (once; cached in $tarball)"
  debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log"; fail "debootstrap (is deb.debian.org reachable?)"; }
  chroot "$root" apt-get clean
  mkdir -p "$cache"
  tar -C "$root" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
else
  tar -C "$root" -xf "$tarball"
fi
t_root=$(date +%s)
# Fresh proc and sysfs instances and a non-recursive bind of /dev: nothing the cleanup unmounts is
# a peer of a host mount.
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
mount --bind /dev "$root/dev"
cp /etc/resolv.conf "$root/etc/resolv.conf"
in_root() { chroot "$root" "$@"; }

# 4. Install: apt resolves Depends from the mirror; nothing is enabled, started or created.
cp "$deb" "$root/tmp/"
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "/tmp/$(basename "$deb")" \
  >"$work/install.log" 2>&1 || { tail -30 "$work/install.log"; fail "apt-get install of the .deb"; }
grep -q 'installed, not started' "$work/install.log" || fail "postinst did not say the service is not started"
in_root dpkg-query -W -f='${Status}' mcescan-exporter | grep -q 'install ok installed' || fail "dpkg does not list the package as installed"
for f in /usr/bin/mcescan-exporter /lib/systemd/system/mcescan-exporter.service /etc/default/mcescan-exporter \
         /usr/share/doc/mcescan-exporter/deploy.md; do
  [ -e "$root$f" ] || fail "$f not installed"
done
cmp -s "$root/lib/systemd/system/mcescan-exporter.service" "$unit" || fail "the installed unit differs from $unit"
! in_root getent passwd mcescan >/dev/null || fail "a mcescan account was created (the unit uses DynamicUser)"
[ -z "$(find "$root/etc/systemd" -name 'mcescan-exporter*' 2>/dev/null)" ] || fail "the unit was enabled on install"
say "installed with apt: $(grep -c '^Setting up' "$work/install.log") packages set up, nothing enabled, no account created"

# 5. Run it as the unit would: ExecStart with the EnvironmentFile's arguments, a transient UID
# with exactly the unit's ambient capabilities, $STATE_DIRECTORY 0700.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sed -i "s#^MCESCAN_EXPORTER_ARGS=.*#MCESCAN_EXPORTER_ARGS=\"--web.listen-address 127.0.0.1:$port\"#" "$root/etc/default/mcescan-exporter"
caps=$(sed -n 's/^AmbientCapabilities=//p' "$unit" | tr 'A-Z' 'a-z' | sed 's/cap_/+/g; s/ /,/g')
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
uid=61790
install -d -m 0700 -o "$uid" -g "$uid" "$root/var/lib/mcescan-exporter"
# MemoryDenyWriteExecute= as the kernel enforces it (PR_SET_MDWE, Linux 6.3+, kept across
# execve): set by a host python3 that then execs the rest.
mdwe=(python3 -c 'import ctypes, os, sys
if ctypes.CDLL(None).prctl(65, 1, 0, 0, 0) != 0: sys.exit("PR_SET_MDWE refused")
os.execvp(sys.argv[1], sys.argv[1:])')
"${mdwe[@]}" true 2>/dev/null || { say "this kernel has no PR_SET_MDWE: MemoryDenyWriteExecute= not emulated"; mdwe=(); }
# A plain command, not a function: run in the background it is exec'd directly, so $! is the
# daemon itself (python3, chroot, env, setpriv and sh all exec).
as_unit=("${mdwe[@]}" chroot "$root" env STATE_DIRECTORY=/var/lib/mcescan-exporter setpriv --reuid="$uid" --regid="$uid" --clear-groups
         --inh-caps="-all,$caps" --ambient-caps="$caps" --bounding-set="-all,$caps")
"${as_unit[@]}" /bin/sh -c ". /etc/default/mcescan-exporter; exec $exec_start" </dev/null 2>"$work/daemon.log" &
pid=$!
url="http://127.0.0.1:$port"
for _ in $(seq 1 100); do
  curl -fsS -o /dev/null "$url/healthz" 2>/dev/null && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/daemon.log"; fail "the installed daemon exited"; }
  sleep 0.1
done
ok=0
for _ in $(seq 1 150); do
  curl -fsS "$url/metrics" -o "$work/metrics.txt"
  grep -q '^mcescan_kernel_hwpoison_census_timestamp_seconds ' "$work/metrics.txt" && grep -q '^mcescan_coverage_ratio{' "$work/metrics.txt" \
    && { ok=1; break; }
  sleep 0.2
done
[ "$ok" = 1 ] || { cat "$work/daemon.log"; fail "no hwpoison census or coverage_ratio within 30 s"; }
findings=$(promtool check metrics <"$work/metrics.txt" 2>&1) && [ -z "$findings" ] || fail "promtool: $findings"
for c in process memory_failure hwpoison edac_scrub scanner; do
  grep -qx "mcescan_scrape_collector_success{collector=\"$c\"} 1" "$work/metrics.txt" || fail "collector $c not successful as the unit's user"
done
grep -q '^mcescan_worker_state{node="0",state="running"} 1' "$work/metrics.txt" || fail "worker of node 0 not running"
[ -f "$root/var/lib/mcescan-exporter/events.jsonl" ] || fail "no events.jsonl in \$STATE_DIRECTORY"
"${as_unit[@]}" /usr/bin/mcescan-exporter doctor --json >"$work/doctor.json"
python3 - "$work/doctor.json" <<'PY' || fail "doctor as the unit's user"
import json, sys
caps = {c["name"]: c["status"] for c in json.load(open(sys.argv[1]))["capabilities"]}
bad = {n: caps.get(n) for n in ("mlock_limit", "pagemap_pfn", "kpageflags") if caps.get(n) != "ok"}
sys.exit(f"doctor: {bad}" if bad else 0)
PY
kill -TERM "$pid"; rc=0; wait "$pid" || rc=$?; pid=""
[ "$rc" = 0 ] || fail "SIGTERM: exit $rc"
say "ran as UID $uid with caps ${caps//+/}${mdwe:+ and PR_SET_MDWE}: $(grep -vc '^#' "$work/metrics.txt") series, promtool clean, every collector successful (hwpoison census and coverage_ratio included), doctor mlock/pagemap/kpageflags ok, SIGTERM exit 0"

# 6. Remove keeps the conffile and the state; purge removes both; nothing else is left.
in_root env DEBIAN_FRONTEND=noninteractive apt-get remove -y -q mcescan-exporter >"$work/remove.log" 2>&1 || { cat "$work/remove.log"; fail "apt-get remove"; }
[ ! -e "$root/usr/bin/mcescan-exporter" ] && [ ! -e "$root/lib/systemd/system/mcescan-exporter.service" ] || fail "remove left the binary or the unit"
[ -e "$root/etc/default/mcescan-exporter" ] && [ -d "$root/var/lib/mcescan-exporter" ] || fail "remove deleted the conffile or the state"
in_root env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q mcescan-exporter >"$work/purge.log" 2>&1 || { cat "$work/purge.log"; fail "apt-get purge"; }
left=$(in_root sh -c 'ls -d /etc/default/mcescan-exporter /var/lib/mcescan-exporter /usr/share/doc/mcescan-exporter 2>/dev/null; dpkg-query -W -f="\${Status}" mcescan-exporter 2>/dev/null | grep -v "not-installed"' || true)
[ -z "$left" ] || fail "purge left: $left"
say "remove kept /etc/default and the state, purge removed everything"

t_end=$(date +%s)
say "passed in $((t_end - t0)) s (package $((t_built - t0)) s, chroot $((t_root - t_built)) s, install/run/remove $((t_end - t_root)) s)"
