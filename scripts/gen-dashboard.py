#!/usr/bin/env python3
"""Writes dashboards/mcescan-exporter.json, the Grafana dashboard of mcescan-exporter.

The dashboard is generated so that every panel follows the same conventions: the `$datasource`
variable, the `$instance` and `$node` filters on every query, `$__rate_interval` in every range,
and only metric series the exporter writes at its default `--metrics.detail basic` (bit flips
aggregated over memory_type, hwpoison page types that may be absent, no histogram buckets).
scripts/check-dashboard.py validates the result; the e2e (scripts/e2e-prometheus) runs every query.

  scripts/gen-dashboard.py           rewrite the file
  scripts/gen-dashboard.py --check   exit 1 if the committed file differs from what it generates
"""
import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "dashboards" / "mcescan-exporter.json"
UID = "mcescan-exporter"
DS = {"type": "prometheus", "uid": "${datasource}"}

# Selectors: every mcescan series carries instance; per-node families also carry node.
I = 'instance=~"$instance"'
IN = 'instance=~"$instance",node=~"$node"'
RI = "$__rate_interval"
# process_* and up also come from other exporters on the same instance: keep mcescan's job only.
MCESCAN_JOB = "and on(instance, job) mcescan_exporter_build_info"


def target(expr, legend, ref):
    return {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": ref, "range": True}


class Layout:
    """Places panels on Grafana's 24-column grid, row by row."""

    def __init__(self):
        self.panels = []
        self.y = 0
        self.x = 0
        self.row_h = 0
        self.next_id = 1

    def row(self, title):
        self._newline()
        self.panels.append({"type": "row", "title": title, "id": self._id(), "collapsed": False,
                            "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y}, "panels": []})
        self.y += 1

    def panel(self, kind, title, description, targets, w=12, h=8, unit="short", **extra):
        if self.x + w > 24:
            self._newline()
        p = {
            "type": kind, "title": title, "description": description, "id": self._id(),
            "datasource": DS,
            "gridPos": {"h": h, "w": w, "x": self.x, "y": self.y},
            "targets": [target(e, l, chr(ord("A") + i)) for i, (e, l) in enumerate(targets)],
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "options": {},
        }
        if kind == "timeseries":
            p["fieldConfig"]["defaults"]["custom"] = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10}
            p["options"] = {"legend": {"displayMode": "table", "placement": "bottom", "calcs": ["lastNotNull", "max"]},
                            "tooltip": {"mode": "multi", "sort": "desc"}}
        if kind == "stat":
            p["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                            "colorMode": "value", "graphMode": "none", "textMode": "auto"}
        p.update(extra)
        self.panels.append(p)
        self.x += w
        self.row_h = max(self.row_h, h)

    def _newline(self):
        if self.x:
            self.y += self.row_h
        self.x = 0
        self.row_h = 0

    def _id(self):
        self.next_id += 1
        return self.next_id - 1


def thresholds(*steps):
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for v, c in steps]}


def errors_row(L):
    L.row("Errors found")
    L.panel("stat", "Poisoned pages (range)",
            "Pages that raised SIGBUS BUS_MCEERR_AR/AO while scanned, plus injected poison, in the dashboard range.",
            [(f"sum by (instance) (increase(mcescan_poisoned_pages_total{{{IN}}}[$__range]))", "{{instance}}")],
            w=6, h=5, fieldConfig={"defaults": {"unit": "short", "thresholds": thresholds((None, "green"), (1, "red"))},
                                   "overrides": []})
    L.panel("stat", "Corrupted words (range)",
            "64-bit words that read back different from the pattern written (silent corruption), in the dashboard range.",
            [(f"sum by (instance) (increase(mcescan_corrupted_words_total{{{IN}}}[$__range]))", "{{instance}}")],
            w=6, h=5, fieldConfig={"defaults": {"unit": "short", "thresholds": thresholds((None, "green"), (1, "red"))},
                                   "overrides": []})
    L.panel("stat", "Kernel pages not recovered (range)",
            "Raw poisoned pages the kernel's memory-failure handler failed on or ignored, in the dashboard range.",
            [(f'sum by (instance) (increase(mcescan_kernel_memory_failure_pages_total{{{IN},result=~"failed|ignored"}}[$__range]))',
              "{{instance}}")],
            w=6, h=5, fieldConfig={"defaults": {"unit": "short", "thresholds": thresholds((None, "green"), (1, "red"))},
                                   "overrides": []})
    L.panel("stat", "Time since last full scan",
            "Age of the oldest node's last full scan (the scan cursor wrapped over every enabled memory type). No value before the first full scan.",
            [(f"max by (instance) (time() - (mcescan_last_full_scan_timestamp_seconds{{{IN}}} > 0))", "{{instance}}")],
            w=6, h=5, unit="s")
    L.panel("timeseries", "Corrupted words",
            "Words that read back wrong, per node and memory type, per rate interval.",
            [(f"sum by (instance, node, memory_type) (increase(mcescan_corrupted_words_total{{{IN}}}[{RI}]))",
              "{{instance}} node {{node}} {{memory_type}}")])
    L.panel("timeseries", "Bit flips by direction",
            "Flipped bits of the corrupted words (0to1: expected 0, read 1). A steady direction points at a stuck bit or a weak cell.",
            [(f"sum by (instance, node, direction) (increase(mcescan_bit_flips_total{{{IN}}}[{RI}]))",
              "{{instance}} node {{node}} {{direction}}")])
    L.panel("timeseries", "Poisoned and replaced pages",
            "Poisoned pages found, and faulting arena pages retired and replaced with fresh memory.",
            [(f"sum by (instance, node, memory_type) (increase(mcescan_poisoned_pages_total{{{IN}}}[{RI}]))",
              "poisoned {{instance}} node {{node}} {{memory_type}}"),
             (f"sum by (instance, node, memory_type) (increase(mcescan_replaced_pages_total{{{IN}}}[{RI}]))",
              "replaced {{instance}} node {{node}} {{memory_type}}")])
    L.panel("timeseries", "SIGBUS by code",
            "SIGBUS signals the scanner took and survived, by si_code (mceerr_ar/ao: hardware poison; adrerr/objerr: lost backing, e.g. injected poison).",
            [(f"sum by (instance, node, code) (increase(mcescan_sigbus_total{{{IN}}}[{RI}]))",
              "{{instance}} node {{node}} {{code}}")])
    L.panel("timeseries", "Injected faults (fire drills)",
            "Faults injected through the control API; they also count in the error panels above.",
            [(f"sum by (instance, node, kind) (increase(mcescan_injected_faults_total{{{IN}}}[{RI}]))",
              "{{instance}} node {{node}} {{kind}}")])


def scanner_row(L):
    L.row("Scanner")
    L.panel("timeseries", "Scan throughput",
            "Pages verified per second, per node and memory type (a 2 MiB huge page counts once).",
            [(f"sum by (instance, node, memory_type) (rate(mcescan_scanned_pages_total{{{IN}}}[{RI}]))",
              "{{instance}} node {{node}} {{memory_type}}")], unit="pps")
    L.panel("timeseries", "Time since last full scan",
            "Seconds since each node's last full scan, against the expected full-scan period from the knobs (upper bound: the node's MemTotal in 4 KiB pages / pages_to_scan x scan sleep).",
            [(f"time() - (mcescan_last_full_scan_timestamp_seconds{{{IN}}} > 0)", "since {{instance}} node {{node}}"),
             (f"mcescan_node_memory_bytes{{{IN}}} / 4096 / (mcescan_config_pages_to_scan{{{IN}}} > 0) * mcescan_config_scan_sleep_seconds{{{IN}}}",
              "expected period {{instance}} node {{node}}")], unit="s")
    L.panel("timeseries", "Full scans",
            "Full scans completed per rate interval.",
            [(f"sum by (instance, node) (increase(mcescan_full_scans_total{{{IN}}}[{RI}]))", "{{instance}} node {{node}}")])
    L.panel("state-timeline", "Worker state",
            "The state of each node's scan worker: running, parked (pages_to_scan or type is 0), backoff, failed.",
            [(f"max by (instance, node, state) (mcescan_worker_state{{{IN}}} == 1)", "{{instance}} node {{node}} {{state}}")],
            options={"mergeValues": True, "showValue": "never", "rowHeight": 0.8})
    L.panel("timeseries", "Back-offs by reason",
            "Free/hugetlb sweep visits that took no memory: pressure (PSI), reserve (MemFree floor), unavailable.",
            [(f"sum by (instance, node, reason) (increase(mcescan_scan_backoffs_total{{{IN}}}[{RI}]))",
              "{{instance}} node {{node}} {{reason}}")])
    L.panel("timeseries", "Wake duration (mean) and worker CPU",
            "Mean wall time of one wake (rate of _sum / rate of _count), and CPU seconds per second of the worker thread.",
            [(f"sum by (instance, node) (rate(mcescan_wake_duration_seconds_sum{{{IN}}}[{RI}])) / sum by (instance, node) (rate(mcescan_wake_duration_seconds_count{{{IN}}}[{RI}]))",
              "wake {{instance}} node {{node}}"),
             (f"sum by (instance, node) (rate(mcescan_scan_cpu_seconds_total{{{IN}}}[{RI}]))", "cpu {{instance}} node {{node}}")],
            unit="s")
    L.panel("timeseries", "Knobs and held memory",
            "pages_to_scan, the scan sleep, and the memory each worker holds for scanning by type.",
            [(f"mcescan_config_pages_to_scan{{{IN}}}", "pages_to_scan {{instance}} node {{node}}"),
             (f"mcescan_config_scan_sleep_seconds{{{IN}}}", "sleep s {{instance}} node {{node}}"),
             (f"sum by (instance, node, memory_type) (mcescan_region_bytes{{{IN}}})", "held bytes {{instance}} node {{node}} {{memory_type}}")])
    L.panel("timeseries", "Wakes",
            "Wakes that scanned, per second.",
            [(f"sum by (instance, node) (rate(mcescan_wakeups_total{{{IN}}}[{RI}]))", "{{instance}} node {{node}}")], unit="wps")


def kernel_row(L):
    L.row("Kernel")
    L.panel("timeseries", "Kernel memory_failure outcomes",
            "Raw poisoned pages the kernel's memory-failure handler dealt with, by result (nodeN/memory_failure/, Linux 6.3+).",
            [(f"sum by (instance, node, result) (increase(mcescan_kernel_memory_failure_pages_total{{{IN}}}[{RI}]))",
              "{{instance}} node {{node}} {{result}}")])
    L.panel("table", "Kernel memory_failure since boot",
            "The kernel's per-node memory-failure counters since boot.",
            [(f"sum by (instance, node, result) (mcescan_kernel_memory_failure_pages_total{{{IN}}})", "")],
            options={"showHeader": True}, transformations=[{"id": "labelsToFields", "options": {}}])
    # At --metrics.detail basic only non-zero page types are exported: a host with none shows 0.
    L.panel("timeseries", "hwpoison census by page type",
            "Page frames with the kernel's HWPOISON flag in the last census of /proc/kpageflags, by page type (0 when none).",
            [(f"sum by (instance, node, page_type) (mcescan_kernel_hwpoison_pages{{{IN}}}) "
              f"or on(instance, node) label_replace(0 * sum by (instance, node) (mcescan_kernel_hwpoison_census_pages{{{IN}}}), \"page_type\", \"none\", \"\", \"\")",
              "{{instance}} node {{node}} {{page_type}}")])
    L.panel("timeseries", "hwpoison census",
            "Frames examined by the last census per node, and the age of the last complete census.",
            [(f"mcescan_kernel_hwpoison_census_pages{{{IN}}}", "frames {{instance}} node {{node}}"),
             (f"time() - mcescan_kernel_hwpoison_census_timestamp_seconds{{{I}}}", "age s {{instance}}")])
    L.panel("timeseries", "EDAC scrub",
            "Background (patrol) scrub cycle per scrub instance, with the supported range, and whether it is enabled (1).",
            [(f"mcescan_edac_scrub_cycle_seconds{{{I}}}", "cycle {{instance}} {{device}} {{scrub}}"),
             (f"mcescan_edac_scrub_min_cycle_seconds{{{I}}}", "min {{instance}} {{device}} {{scrub}}"),
             (f"mcescan_edac_scrub_max_cycle_seconds{{{I}}}", "max {{instance}} {{device}} {{scrub}}")], unit="s")
    L.panel("state-timeline", "EDAC background scrub enabled",
            "1 if background (patrol) scrubbing is on for the scrub instance.",
            [(f"mcescan_edac_scrub_background_enabled{{{I}}}", "{{instance}} {{device}} {{scrub}}")],
            options={"mergeValues": True, "showValue": "auto", "rowHeight": 0.8})
    L.panel("timeseries", "node_exporter EDAC errors (when scraped)",
            "Corrected and uncorrected errors per memory controller from node_exporter's edac collector, for the instances that run mcescan-exporter (joined on instance; empty without node_exporter).",
            [(f"sum by (instance, controller) (increase(node_edac_correctable_errors_total{{{I}}}[{RI}])) and on(instance) mcescan_exporter_build_info",
              "CE {{instance}} mc{{controller}}"),
             (f"sum by (instance, controller) (increase(node_edac_uncorrectable_errors_total{{{I}}}[{RI}])) and on(instance) mcescan_exporter_build_info",
              "UE {{instance}} mc{{controller}}")], w=24)


def exporter_row(L):
    L.row("Exporter")
    L.panel("timeseries", "Scrape health",
            "up of the exporter's targets (kept for an hour after the exporter was last seen), and each collector's last-scrape success (0: its source is unreadable or malformed).",
            [(f"up{{{I}}} and on(instance, job) last_over_time(mcescan_exporter_build_info{{{I}}}[1h])", "up {{instance}}"),
             (f"mcescan_scrape_collector_success{{{I}}}", "{{instance}} {{collector}}")], w=8)
    L.panel("timeseries", "Collector duration",
            "Wall time each collector took in the last scrape.",
            [(f"mcescan_scrape_collector_duration_seconds{{{I}}}", "{{instance}} {{collector}}")], w=8, unit="s")
    L.panel("table", "Build",
            "Version, revision and Swift version of each instance.",
            [(f"mcescan_exporter_build_info{{{I}}}", "")], w=8,
            transformations=[{"id": "labelsToFields", "options": {}}])
    L.panel("timeseries", "Process CPU",
            "CPU seconds per second of the exporter process (all threads, scan workers included).",
            [(f"rate(process_cpu_seconds_total{{{I}}}[{RI}]) {MCESCAN_JOB}", "cpu {{instance}}")], w=8, unit="percentunit")
    L.panel("timeseries", "Process memory",
            "Resident memory and heap of the exporter process.",
            [(f"process_resident_memory_bytes{{{I}}} {MCESCAN_JOB}", "rss {{instance}}"),
             (f"process_heap_bytes{{{I}}} {MCESCAN_JOB}", "heap {{instance}}")], w=8, unit="bytes")
    L.panel("timeseries", "File descriptors and threads",
            "Open file descriptors against the limit, and OS threads.",
            [(f"process_open_fds{{{I}}} {MCESCAN_JOB}", "open fds {{instance}}"),
             (f"process_max_fds{{{I}}} {MCESCAN_JOB}", "max fds {{instance}}"),
             (f"process_threads{{{I}}} {MCESCAN_JOB}", "threads {{instance}}")], w=8)


def variables():
    return {"list": [
        {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
         "current": {}, "hide": 0, "refresh": 1, "regex": "", "options": []},
        {"name": "instance", "label": "Instance", "type": "query", "datasource": DS,
         "query": {"query": "label_values(mcescan_exporter_build_info, instance)", "refId": "instance"},
         "definition": "label_values(mcescan_exporter_build_info, instance)",
         "multi": True, "includeAll": True, "allValue": ".+", "current": {}, "refresh": 2, "sort": 1,
         "hide": 0, "regex": "", "options": []},
        {"name": "node", "label": "NUMA node", "type": "query", "datasource": DS,
         "query": {"query": 'label_values(mcescan_worker_state{instance=~"$instance"}, node)', "refId": "node"},
         "definition": 'label_values(mcescan_worker_state{instance=~"$instance"}, node)',
         "multi": True, "includeAll": True, "allValue": ".+", "current": {}, "refresh": 2, "sort": 3,
         "hide": 0, "regex": "", "options": []},
    ]}


def build():
    L = Layout()
    for row in (errors_row, scanner_row, kernel_row, exporter_row):
        row(L)
    return {
        "id": None,
        "uid": UID,
        "title": "mcescan-exporter",
        "description": "Memory scanning per NUMA node: errors found, scan progress, kernel memory-failure state, exporter health.",
        "tags": ["mcescan", "memory", "ras"],
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "1m",
        "timezone": "",
        "links": [],
        "annotations": {"list": [{
            "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True,
            "hide": True, "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts", "type": "dashboard"}]},
        "templating": variables(),
        "panels": L.panels,
    }


def main():
    text = json.dumps(build(), indent=2, sort_keys=False) + "\n"
    if sys.argv[1:] == ["--check"]:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"gen-dashboard: {OUT} is not what scripts/gen-dashboard.py generates (run it)", file=sys.stderr)
            return 1
        print(f"gen-dashboard: {OUT.name} is up to date")
        return 0
    if sys.argv[1:]:
        print("usage: gen-dashboard.py [--check]", file=sys.stderr)
        return 2
    OUT.write_text(text)
    print(f"gen-dashboard: wrote {OUT} ({sum(1 for p in build()['panels'] if p['type'] != 'row')} panels)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
