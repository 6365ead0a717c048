#!/usr/bin/env bash
# Crash-restart (short mode): PATCH, inject and read events, SIGKILL at a random moment, restart;
# every acknowledged change and every event the API showed must be on disk, and the files parse.
# The long mode is `scripts/crash-restart 200` (RELIABILITY.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${MCESCAN_BIN:?MCESCAN_BIN must name the release binary}"
exec scripts/crash-restart 8
