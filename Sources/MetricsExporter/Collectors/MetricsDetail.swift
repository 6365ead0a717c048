/// How much per-node detail `/metrics` carries (`--metrics.detail`).
///
/// A fleet pays for every series on every host, so the default (`basic`) leaves out what no
/// dashboard panel or alert reads: series derivable from others, diagnostics of one host's
/// set-up, and label dimensions that queries always sum away. `full` exports everything, for
/// debugging one host. docs/metrics.md lists what each level exports and why.
///
/// Folding is one pure step over the families a collector built (`fold(scanner:)`,
/// `fold(hwpoisonPages:)`), so what each level contains is decided here and only here.
public enum MetricsDetail: String, Sendable, CaseIterable {
    /// The series dashboards and alerts read; the default.
    case basic
    /// Every series, every label.
    case full

    /// The level `--metrics.detail` starts with.
    public static let `default`: MetricsDetail = .basic

    /// Scanner families (name without `mcescan_`) exported only at `full`:
    /// `scanned_bytes_total` is `scanned_pages_total` times the type's page size; the placement and
    /// mlock shares of a region and the per-type availability and enable flags explain one
    /// host's set-up (the control API and `doctor` show them too), no fleet query reads them.
    static let fullOnlyScannerFamilies: Set<String> = [
        "scanned_bytes_total", "region_misplaced_bytes", "region_locked_bytes",
        "memory_type_available", "config_memory_type_enabled",
    ]

    /// The series scanner family `name` (without `mcescan_`) keeps at this level; nil drops the
    /// family. At `basic`, `bit_flips_total` is summed over `memory_type` (queries sum by
    /// node and direction) and `wake_duration_seconds` keeps only `_sum`, `_count` and the
    /// `+Inf` bucket (queries use rate(_sum)/rate(_count), never histogram_quantile).
    func fold(scanner name: String, _ metrics: [Metric]) -> [Metric]? {
        guard self == .basic else { return metrics }
        if Self.fullOnlyScannerFamilies.contains(name) { return nil }
        switch name {
        case "bit_flips_total": return Self.summed(metrics, dropping: "memory_type")
        case "wake_duration_seconds": return metrics.map(Self.withoutFiniteBuckets)
        default: return metrics
        }
    }

    /// The `mcescan_kernel_hwpoison_pages{node,page_type}` series kept at this level. At `basic`
    /// only page types with a poisoned frame: a clean host has none, and the census's
    /// `census_pages{node}` still shows every node was examined.
    func fold(hwpoisonPages metrics: [Metric]) -> [Metric] {
        guard self == .basic else { return metrics }
        return metrics.filter { $0.value != .unsigned(0) && $0.value != .double(0) }
    }

    /// Sums scalar series that differ only in `label`, keeping the first-seen order of the
    /// remaining label sets. Unsigned values stay exact (wrapping like the counters they sum).
    static func summed(_ metrics: [Metric], dropping label: String) -> [Metric] {
        var order: [[Label]] = []
        var sums: [[Label]: SampleValue] = [:]
        for metric in metrics {
            let key = metric.labels.filter { $0.name != label }
            guard let previous = sums[key] else {
                order.append(key)
                sums[key] = metric.value
                continue
            }
            sums[key] = added(previous, metric.value)
        }
        return order.map { Metric(labels: $0, value: sums[$0]!) }
    }

    private static func added(_ a: SampleValue, _ b: SampleValue) -> SampleValue {
        switch (a, b) {
        case (.unsigned(let x), .unsigned(let y)): return .unsigned(x &+ y)
        case (.unsigned(let x), .double(let y)): return .double(Double(x) + y)
        case (.double(let x), .unsigned(let y)): return .double(x + Double(y))
        case (.double(let x), .double(let y)): return .double(x + y)
        default: return a  // histograms are never summed here
        }
    }

    /// A histogram series reduced to `_sum`, `_count` and the implied `+Inf` bucket.
    static func withoutFiniteBuckets(_ metric: Metric) -> Metric {
        guard case .histogram(let h) = metric.value else { return metric }
        return Metric(labels: metric.labels,
                      value: .histogram(HistogramValue(upperBounds: [], cumulativeCounts: [], count: h.count, sum: h.sum)))
    }
}
