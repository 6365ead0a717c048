#!/usr/bin/env bash
# Series budget: an 8-node host at the default --metrics.detail (basic) stays within 400 series
# per scrape, counted from real scrapes of generated fixture hosts (scripts/series-budget;
# MCESCAN_BIN is the release binary scripts/test built). docs/deploy.md records the counts.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec scripts/series-budget --budget 400
