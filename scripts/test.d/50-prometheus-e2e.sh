#!/usr/bin/env bash
# Dashboards and alerting: promtool check rules and test rules on every rules file, the dashboard
# checks (scripts/check-dashboard.py), then the real end-to-end run against Prometheus,
# Alertmanager, node_exporter and headless chromium (scripts/e2e-prometheus), which must finish in
# under 3 minutes. MCESCAN_BIN is the release binary scripts/test built; without it one is built.
set -euo pipefail
cd "$(dirname "$0")/../.."
fail() { echo "50-prometheus-e2e: FAILED: $*" >&2; exit 1; }

for f in dashboards/rules.yml dashboards/alerts.yml; do
  promtool check rules --lint=all --lint-fatal "$f" || fail "promtool check rules $f"
done
for t in dashboards/tests/*.yml; do
  promtool test rules "$t" || fail "promtool test rules $t"
done
python3 scripts/check-dashboard.py || fail "check-dashboard.py"

if [ -z "${MCESCAN_BIN:-}" ]; then
  swift build -c release --product mcescan-exporter
  MCESCAN_BIN="$(swift build -c release --show-bin-path)/mcescan-exporter"
  export MCESCAN_BIN
fi
start=$(date +%s)
scripts/e2e-prometheus || fail "scripts/e2e-prometheus"
took=$(( $(date +%s) - start ))
[ "$took" -lt 180 ] || fail "scripts/e2e-prometheus took ${took}s (limit 180 s)"
echo "50-prometheus-e2e: e2e-prometheus passed in ${took}s"
