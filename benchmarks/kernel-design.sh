#!/usr/bin/env bash
# The design experiments behind the verify's stream layout and the arena pass's rewrite
# (benchmarks/design/kernel-design.c; numbers in BENCHMARKS.md, "Scan kernel" and "Scan workers").
#
#   benchmarks/kernel-design.sh [streams|refill|all]
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
case "$what" in streams|refill|all) ;; *) echo "kernel-design: streams, refill or all, got '$what'" >&2; exit 2 ;; esac
bin=$(mktemp -d)/kernel-design
trap 'rm -rf "$(dirname "$bin")"' EXIT
cc -O2 -Wall -ISources/CScanKernel/include -ISources/CScanKernel -o "$bin" benchmarks/design/kernel-design.c -lpthread
echo "== host: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $(uname -r)"
[ "$what" = refill ] || "$bin" streams
[ "$what" = streams ] || "$bin" refill
