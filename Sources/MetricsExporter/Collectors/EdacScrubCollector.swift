import ScanWorkers

/// EDAC scrub control (Linux 6.15+, `Documentation/ABI/testing/sysfs-edac-scrub`): for each
/// `bus/edac/devices/<device>/scrubN/` under `--path.sysfs`, reads (never writes)
/// `enable_background`, `current_cycle_duration`, `min_cycle_duration` and `max_cycle_duration`
/// on every scrape.
///
/// Families, labelled `{device,scrub}`: `mcescan_edac_scrub_background_enabled` (0/1),
/// `mcescan_edac_scrub_cycle_seconds` (current), `mcescan_edac_scrub_min_cycle_seconds`,
/// `mcescan_edac_scrub_max_cycle_seconds`. An attribute exists only if the driver implements it,
/// so a missing attribute just has no series. No `bus/edac/devices` or no `scrub*` directory: no
/// series, success 1. An unreadable or malformed attribute fails the collector.
public struct EdacScrubCollector: Collector {
    /// `collector="edac_scrub"`, `--collector.edac_scrub`.
    public let name = "edac_scrub"
    let sysfs: SysFS

    /// Reads `bus/edac/devices` under `sysfs`.
    public init(sysfs: SysFS) {
        self.sysfs = sysfs
    }

    /// The read attributes and the families they feed, in exposition order.
    static let attributes: [(file: String, family: String, help: String)] = [
        ("enable_background", "mcescan_edac_scrub_background_enabled",
         "1 if background (patrol) scrubbing is enabled on the scrub instance, 0 if not (EDAC scrub enable_background)."),
        ("current_cycle_duration", "mcescan_edac_scrub_cycle_seconds",
         "Current duration of one background scrub cycle of the scrub instance (EDAC scrub current_cycle_duration)."),
        ("max_cycle_duration", "mcescan_edac_scrub_max_cycle_seconds",
         "Longest background scrub cycle the scrub instance supports (EDAC scrub max_cycle_duration)."),
        ("min_cycle_duration", "mcescan_edac_scrub_min_cycle_seconds",
         "Shortest background scrub cycle the scrub instance supports (EDAC scrub min_cycle_duration)."),
    ]

    /// Reads every scrub instance's attributes now (at most four small reads each).
    public func collect(into families: inout [MetricFamily]) throws {
        let root = "bus/edac/devices"
        guard let devices = try sysfs.listIfPresent(root) else { return }
        var series = Array(repeating: [Metric](), count: Self.attributes.count)
        for device in devices {
            // A device that vanished between listing and reading (hot unplug) has no scrub dirs.
            guard let entries = try? sysfs.list("\(root)/\(device)") else { continue }
            for scrub in entries where Self.isScrubInstance(scrub) && sysfs.isDirectory("\(root)/\(device)/\(scrub)") {
                for (i, attribute) in Self.attributes.enumerated() {
                    let rel = "\(root)/\(device)/\(scrub)/\(attribute.file)"
                    guard sysfs.exists(rel) else { continue }
                    let path = sysfs.path(rel)
                    let bytes = try sysfs.readBytes(rel, limit: 64)
                    let value = i == 0 ? try Self.parseEnabled(bytes, path: path) : try Self.parseSeconds(bytes, path: path)
                    series[i].append(Metric(["device": device, "scrub": scrub], value))
                }
            }
        }
        for (i, attribute) in Self.attributes.enumerated() where !series[i].isEmpty {
            families.append(try MetricFamily(name: attribute.family, help: attribute.help, type: .gauge,
                                             unit: i == 0 ? nil : "seconds", metrics: series[i]))
        }
    }

    /// `scrubN` directory names (`scrub0`, `scrub1`, ...).
    public static func isScrubInstance(_ name: String) -> Bool {
        guard name.hasPrefix("scrub") else { return false }
        let digits = name.dropFirst(5)
        return !digits.isEmpty && digits.allSatisfy { $0.isASCII && $0.isNumber }
    }

    /// Pure parser of `enable_background`: `0` or `1`, optional trailing newline.
    public static func parseEnabled(_ bytes: [UInt8], path: String = "enable_background") throws(HostFSError) -> UInt64 {
        let v = try MemoryFailureStats.parseCount(bytes, path: path)
        guard v <= 1 else { throw HostFSError(.malformed, path: path, "expected 0 or 1, read \(v)") }
        return v
    }

    /// Pure parser of a `*_cycle_duration` attribute: whole seconds, optional trailing newline.
    public static func parseSeconds(_ bytes: [UInt8], path: String = "cycle_duration") throws(HostFSError) -> UInt64 {
        try MemoryFailureStats.parseCount(bytes, path: path)
    }
}
