#!/usr/bin/env bash
# Kernel-collector benchmarks (BENCHMARKS.md, section "Kernel collectors"):
#  1. hwpoison census of a generated 64 GiB kpageflags (16 Mi entries, 512 blocks of 128 MiB on two
#     nodes): CPU (getrusage) against a plain pread loop over the same ranges and `cat` of the file,
#     measured in the same run. Budget: < 1 s CPU.
#  2. the same census against this host's real /sys and /proc (kernel-generated flags; needs root).
#  3. scrape (gather + text encoding) with every collector on, against the process collector alone,
#     on the fixture trees and on this host. Budget: < 2 ms median.
#   benchmarks/collectors.sh [RUNS] [ITERATIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
iterations=${2:-2000}
scratch=${SCRATCH:-.build-collectors}
swift build -c release --scratch-path "$scratch" --product mcescan-collectors-bench >&2
bench="$scratch/release/mcescan-collectors-bench"
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
scripts/gen-fixtures --bench "$tree" --entries $((16 << 20))
echo "== census, generated 64 GiB"
"$bench" census "$tree" "$runs"
if [ -r /proc/kpageflags ] && [ -d /sys/devices/system/memory ]; then
  echo "== census, this host (/sys, /proc)"
  "$bench" census / "$runs"
else
  echo "== census, this host: skipped (/proc/kpageflags not readable: run as root)"
fi
echo "== scrape, fixture trees"
"$bench" scrape Tests/Fixtures/sys Tests/Fixtures/proc "$iterations"
echo "== scrape, this host"
"$bench" scrape /sys /proc "$iterations"
