#!/usr/bin/env bash
# The 2-node QEMU guest lane: real NUMA binding, real MADV_HWPOISON, the kernel's own counters
# (see docs/testing.md). Never skipped: a kernel that cannot be fetched fails the lane.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec scripts/guest-test
