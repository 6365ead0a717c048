import HostFS
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

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
///
/// Reading a scrub attribute can reach the device (a CXL mailbox command), so `serve` keeps these
/// reads off the scrape path: an `EdacScrubSampler` reads them at start and then every 30 s on its
/// own thread, and a scrape shows the last sample. `init(sysfs:)` reads at every collect instead
/// (tests, one-off tools).
public struct EdacScrubCollector: Collector {
    /// `collector="edac_scrub"`, `--collector.edac_scrub`.
    public let name = "edac_scrub"
    let sysfs: SysFS
    let sampler: EdacScrubSampler?

    /// Reads `bus/edac/devices` under `sysfs` at every collect.
    public init(sysfs: SysFS) {
        self.sysfs = sysfs
        self.sampler = nil
    }

    /// Shows the sampler's last sample; never reads a file at scrape time.
    public init(sampler: EdacScrubSampler) {
        self.sysfs = sampler.sysfs
        self.sampler = sampler
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

    /// With a sampler: copies its last sample (throws its last error). Without: reads every
    /// scrub instance's attributes now (at most four small reads each).
    public func collect(into families: inout [MetricFamily]) throws {
        if let sampler {
            families.append(contentsOf: try sampler.last.get())
            return
        }
        families.append(contentsOf: try Self.read(sysfs: sysfs))
    }

    /// Reads every scrub instance under `sysfs` into families (empty when there is none).
    public static func read(sysfs: SysFS) throws -> [MetricFamily] {
        var families: [MetricFamily] = []
        let root = "bus/edac/devices"
        guard let devices = try sysfs.listIfPresent(root) else { return [] }
        var series = Array(repeating: [Metric](), count: attributes.count)
        for device in devices {
            // A device that vanished between listing and reading (hot unplug) has no scrub dirs.
            guard let entries = try? sysfs.list("\(root)/\(device)") else { continue }
            for scrub in entries where EdacScrub.isScrubInstance(scrub) && sysfs.isDirectory("\(root)/\(device)/\(scrub)") {
                for (i, attribute) in attributes.enumerated() {
                    let rel = "\(root)/\(device)/\(scrub)/\(attribute.file)"
                    guard sysfs.exists(rel) else { continue }
                    let path = sysfs.path(rel)
                    let bytes = try sysfs.readBytes(rel, limit: 64)
                    let value = i == 0 ? try EdacScrub.parseEnabled(bytes, path: path) : try EdacScrub.parseSeconds(bytes, path: path)
                    series[i].append(Metric(["device": device, "scrub": scrub], value))
                }
            }
        }
        for (i, attribute) in attributes.enumerated() where !series[i].isEmpty {
            families.append(try MetricFamily(name: attribute.family, help: attribute.help, type: .gauge,
                                             unit: i == 0 ? nil : "seconds", metrics: series[i]))
        }
        return families
    }
}

/// Reads the EDAC scrub attributes off the scrape path: once in `init` (so the first scrape
/// already has them), then every `interval` seconds on a dedicated thread (nice 19) until
/// `stop()`. A read that hangs in a driver delays only the next sample, never a scrape.
public final class EdacScrubSampler: Sendable {
    /// Seconds between two samples in `serve`.
    public static let defaultInterval: Double = 30

    /// The sysfs root read.
    public let sysfs: SysFS
    let interval: Double
    private let state: Mutex<Result<[MetricFamily], any Error>>
    private let thread: PeriodicThread

    /// Takes the first sample now, on the calling thread.
    public init(sysfs: SysFS, interval: Double = EdacScrubSampler.defaultInterval) {
        self.sysfs = sysfs
        self.interval = interval
        self.state = Mutex(Result { try EdacScrubCollector.read(sysfs: sysfs) })
        self.thread = PeriodicThread(interval: interval)
    }

    /// The last sample, or the error of the last read.
    public var last: Result<[MetricFamily], any Error> { state.withLock { $0 } }

    /// Reads now and keeps the result.
    public func sample() {
        let result = Result { try EdacScrubCollector.read(sysfs: sysfs) }
        state.withLock { $0 = result }
    }

    /// Starts sampling every `interval` seconds (the first sample was taken by `init`).
    public func start() {
        thread.start { [self] in sample() }
    }

    /// Stops the thread and waits for it (and for a read in progress).
    public func stop() { thread.stop() }
}

extension EdacScrubCollector {
    /// `--collector.edac_scrub`. EDAC scrub attributes can reach the device (CXL mailbox), so they
    /// are sampled on the sampler's thread, off the scrape path.
    public static let descriptor = CollectorDescriptor(
        name: "edac_scrub", help: "EDAC scrub control state (sysfs bus/edac/devices/*/scrub*/).") { context, _ in
        let sampler = EdacScrubSampler(sysfs: context.sysfs)
        sampler.start()
        return RunningCollector(EdacScrubCollector(sampler: sampler), stop: { sampler.stop() })
    }
}
