#!/usr/bin/env python3
"""Checks the Grafana dashboard and the Prometheus rule files in dashboards/.

- the dashboard is what scripts/gen-dashboard.py generates, has a fixed uid, id null, the
  $datasource/$instance/$node variables, every panel on ${datasource}, every query filtered by
  $instance and every range written as $__rate_interval (or $__range for the range stats);
- every dashboard query, with the variables substituted, is valid PromQL: they are written as
  recording rules into a throwaway rules file and parsed by `promtool check rules`;
- every metric name in a dashboard query or a rule expression is one the exporter writes at its
  default --metrics.detail basic (names from a /metrics scrape: the golden
  Tests/Fixtures/e2e-output.txt unless --metrics FILE names a live one), node_exporter's
  node_edac_*, `up`, or a recording rule of dashboards/rules.yml;
- no query uses what basic folds away (histogram buckets, the full-only families, the
  memory_type label of mcescan_bit_flips_total);
- every alert has for, severity, summary, description and a runbook_url whose anchor exists in
  docs/runbooks.md.

  scripts/check-dashboard.py [--metrics FILE] [--print-queries RATE_INTERVAL]
--print-queries prints every dashboard query with the variables substituted (one a line; the
e2e runs them against a live Prometheus) and checks nothing.
"""
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "dashboards" / "mcescan-exporter.json"
RULE_FILES = [ROOT / "dashboards" / "rules.yml", ROOT / "dashboards" / "alerts.yml"]
RUNBOOKS = ROOT / "docs" / "runbooks.md"

# What --metrics.detail basic does not export (the full-only families and the histogram buckets).
FULL_ONLY = {"mcescan_wake_duration_seconds_bucket", "mcescan_region_misplaced_bytes", "mcescan_region_locked_bytes",
             "mcescan_scanned_bytes_total", "mcescan_memory_type_available", "mcescan_config_memory_type_enabled"}
NODE_EXPORTER = {"node_edac_correctable_errors_total", "node_edac_uncorrectable_errors_total",
                 "node_edac_csrow_correctable_errors_total", "node_edac_csrow_uncorrectable_errors_total"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool",
            "offset", "inf", "nan"}

errors = []


def err(msg):
    errors.append(msg)


def substitute(expr, rate_interval):
    return (expr.replace("$__rate_interval", rate_interval).replace("$__range", "1h")
            .replace("$instance", ".+").replace("$node", ".+"))


def metric_names(expr):
    """Metric names in a PromQL expression: identifiers that are not functions, keywords, label
    names of matchers or grouping clauses, or parts of strings and durations."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    s = re.sub(r"\{[^}]*\}", " ", s)
    s = re.sub(r"\[[^\]]*\]", " ", s)
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    names = set()
    for m in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(\s*\()?", s):
        word, call = m.group(1), m.group(2)
        if call or word.lower() in KEYWORDS:
            continue
        names.add(word)
    return names


def known_metrics(path):
    names = set()
    for line in Path(path).read_text().splitlines():
        if line and not line.startswith("#"):
            names.add(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0))
    return names


def dashboard_queries(dash):
    out = []
    for p in dash["panels"]:
        for t in p.get("targets", []):
            out.append((p["title"], t["expr"]))
    for v in dash["templating"]["list"]:
        if v["type"] == "query":
            inner = re.match(r"label_values\((.*),\s*\w+\)$", v["query"]["query"]).group(1)
            out.append((f"variable {v['name']}", inner))
    return out


def check_conventions(dash):
    if dash.get("id") is not None:
        err("dashboard: id must be null")
    if not dash.get("uid") or len(dash["uid"]) > 40:
        err("dashboard: uid must be fixed, at most 40 characters")
    names = [v["name"] for v in dash["templating"]["list"]]
    for want in ("datasource", "instance", "node"):
        if want not in names:
            err(f"dashboard: no ${want} variable")
    for p in dash["panels"]:
        if p["type"] == "row":
            continue
        if p.get("datasource", {}).get("uid") != "${datasource}":
            err(f"panel {p['title']!r}: datasource is not ${{datasource}}")
        if not p.get("targets"):
            err(f"panel {p['title']!r}: no query")
        for t in p.get("targets", []):
            e = t["expr"]
            if t.get("datasource", {}).get("uid") != "${datasource}":
                err(f"panel {p['title']!r}: query datasource is not ${{datasource}}")
            if '$instance' not in e:
                err(f"panel {p['title']!r}: query not filtered by $instance: {e}")
            for rng in re.findall(r"\[([^\]]*)\]", e):
                if rng not in ("$__rate_interval", "$__range", "1h"):
                    err(f"panel {p['title']!r}: range [{rng}] is not $__rate_interval: {e}")


def check_basic_only(where, expr):
    for name in metric_names(expr) & FULL_ONLY:
        err(f"{where}: {name} is not exported at --metrics.detail basic: {expr}")
    if "histogram_quantile" in expr:
        err(f"{where}: histogram_quantile needs buckets, which basic does not export: {expr}")
    if "mcescan_bit_flips_total" in expr and "memory_type" in expr:
        err(f"{where}: mcescan_bit_flips_total has no memory_type label at basic: {expr}")


def promtool_parse(queries):
    """Parses every query with promtool: each becomes a recording rule of a throwaway file."""
    rules = [{"record": f"check:query_{i}", "expr": q} for i, (_, q) in enumerate(queries)]
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        yaml.safe_dump({"groups": [{"name": "dashboard-queries", "rules": rules}]}, f)
    r = subprocess.run(["promtool", "check", "rules", f.name], capture_output=True, text=True)
    Path(f.name).unlink()
    if r.returncode != 0:
        err(f"promtool check rules on the dashboard queries:\n{r.stdout}{r.stderr}")


def check_rules(known):
    anchors = set(re.findall(r'^#+\s*<a id="([^"]+)"', RUNBOOKS.read_text(), re.M)) if RUNBOOKS.exists() else set()
    anchors |= {re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-")
                for h in re.findall(r"^#+ (.*)$", RUNBOOKS.read_text(), re.M)} if RUNBOOKS.exists() else set()
    exprs = []
    for path in RULE_FILES:
        doc = yaml.safe_load(path.read_text())
        for g in doc["groups"]:
            for r in g["rules"]:
                if "record" in r:
                    known.add(r["record"])
                exprs.append((f"{path.name} {r.get('alert') or r.get('record')}", r["expr"], r))
    for where, expr, r in exprs:
        check_basic_only(where, expr)
        for name in metric_names(expr) - known:
            err(f"{where}: unknown metric {name}")
        if "alert" in r:
            for key in ("summary", "description", "runbook_url"):
                if not r.get("annotations", {}).get(key):
                    err(f"{where}: no annotation {key}")
            if "for" not in r:
                err(f"{where}: no for")
            if r.get("labels", {}).get("severity") not in ("critical", "warning", "info"):
                err(f"{where}: severity must be critical, warning or info")
            url = r.get("annotations", {}).get("runbook_url", "")
            anchor = url.partition("#")[2]
            if not url.startswith("docs/runbooks.md#") or anchor not in anchors:
                err(f"{where}: runbook_url {url!r} is not an anchor of docs/runbooks.md")
    return len(exprs)


def main(argv):
    metrics = ROOT / "Tests" / "Fixtures" / "e2e-output.txt"
    rate_interval = None
    args = list(argv)
    while args:
        a = args.pop(0)
        if a == "--metrics" and args:
            metrics = Path(args.pop(0))
        elif a == "--print-queries" and args:
            rate_interval = args.pop(0)
        else:
            print(__doc__, file=sys.stderr)
            return 2
    dash = json.loads(DASHBOARD.read_text())
    queries = [(w, substitute(q, rate_interval or "1m")) for w, q in dashboard_queries(dash)]
    if rate_interval:
        for w, q in queries:
            print(json.dumps({"panel": w, "expr": q}))
        return 0

    gen = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen-dashboard.py"), "--check"],
                         capture_output=True, text=True)
    if gen.returncode != 0:
        err(gen.stderr.strip())
    check_conventions(dash)
    known = (known_metrics(metrics) - FULL_ONLY) | NODE_EXPORTER | {"up"}
    promtool_parse(queries)
    for where, q in queries:
        check_basic_only(where, q)
        for name in metric_names(q) - known:
            err(f"{where}: unknown metric {name} in {q}")
    n_rules = check_rules(known)
    for e in errors:
        print(f"check-dashboard: {e}", file=sys.stderr)
    if errors:
        print(f"check-dashboard: FAILED ({len(errors)} problems)", file=sys.stderr)
        return 1
    print(f"check-dashboard: {len(queries)} dashboard queries parse and use only exported metrics; "
          f"{n_rules} rules checked (metric names from {metrics.relative_to(ROOT) if metrics.is_relative_to(ROOT) else metrics})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
