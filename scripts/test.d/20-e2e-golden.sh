#!/usr/bin/env bash
# Golden end-to-end /metrics against the fixture trees (scripts/e2e-golden; MCESCAN_BIN is the
# release binary scripts/test built). Rewrite the golden with: scripts/e2e-golden --update
set -euo pipefail
cd "$(dirname "$0")/../.."
exec scripts/e2e-golden
