#!/usr/bin/env bash
# Worker benchmarks (issue 3): CPU-seconds per GiB verified at the default knobs (vs a plain
# vectorized read in the same run), CPU of a parked and of a sleeping worker (must be 0: no
# polling), and knob-change-to-wake latency while sleeping 10 s (median must be < 10 ms).
#   benchmarks/worker-bench.sh [--gib N] [--samples N]
# Builds the release benchmark with its own scratch path. Run as root for mlock of the arena.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --scratch-path .build-bench-workers --product mcescan-worker-bench >/dev/null
uptime
exec .build-bench-workers/release/mcescan-worker-bench "$@"
