#!/usr/bin/env python3
"""Independent check of exposition output with the Python prometheus_client parsers.

usage: parse-exposition.py TEXT_0_0_4 OPENMETRICS [MORE_TEXT_0_0_4...]
Fails (exit 1) on a parse error, a duplicate series, a family split in two, a histogram without
a +Inf bucket equal to _count, a missing trailing newline, or a missing '# EOF'.
"""
import sys
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_families


def check_text(path):
    data = open(path, encoding="utf-8").read()
    assert data.endswith("\n"), f"{path}: does not end in a newline"
    assert "# EOF" not in data, f"{path}: 0.0.4 output must not contain # EOF"
    seen_families, seen_series, series_count = set(), set(), 0
    current = None
    for line in data.splitlines():
        if line.startswith("# TYPE "):
            name = line.split()[2]
            assert name not in seen_families, f"{path}: family {name} appears twice (not contiguous)"
            seen_families.add(name)
            current = name
        elif line and not line.startswith("#"):
            series = line.rsplit(" ", 1)[0]
            assert series not in seen_series, f"{path}: duplicate series {series}"
            seen_series.add(series)
            assert current and series.startswith(current.removesuffix("_total")), f"{path}: {series} outside its family"
            series_count += 1
    families = list(text_string_to_metric_families(data))
    check_histograms(path, families)
    return len(families), series_count


def check_histograms(path, families):
    for f in families:
        if f.type != "histogram":
            continue
        by_labels = {}
        for s in f.samples:
            key = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
            by_labels.setdefault(key, {})[(s.name, s.labels.get("le"))] = s.value
        for key, samples in by_labels.items():
            inf = samples.get((f.name + "_bucket", "+Inf"))
            count = samples.get((f.name + "_count", None))
            assert inf is not None, f"{path}: {f.name}{key} has no +Inf bucket"
            assert inf == count, f"{path}: {f.name}{key} +Inf bucket {inf} != _count {count}"


def check_openmetrics(path):
    data = open(path, encoding="utf-8").read()
    assert data.endswith("# EOF\n"), f"{path}: OpenMetrics output must end with '# EOF\\n'"
    families = list(om_families(data))
    check_histograms(path, families)
    return len(families)


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        n, series = check_text(sys.argv[1])
        print(f"prometheus_client text parser: {n} families, {series} samples, no findings")
        m = check_openmetrics(sys.argv[2])
        print(f"prometheus_client OpenMetrics parser: {m} families, no findings")
        for extra in sys.argv[3:]:
            check_text(extra)
            print(f"prometheus_client text parser ({extra}): no findings")
    except Exception as e:  # any parser error or assertion is a finding
        print(f"parse-exposition: FINDING: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
