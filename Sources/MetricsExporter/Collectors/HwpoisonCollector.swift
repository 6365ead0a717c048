import HostFS
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `mcescan_kernel_hwpoison_pages{node,page_type}`: a census of poisoned page frames per node,
/// taken in the background by `HwpoisonCensus` (never at scrape time). A scrape shows the last
/// complete census and when it finished. At `--metrics.detail basic` only page types with a
/// poisoned frame have a series (`MetricsDetail`).
///
/// - No `/proc/kpageflags` or no memory blocks under `devices/system/memory`: no series,
///   `scrape_collector_success` 1.
/// - The last census failed (unreadable or malformed source): the collector throws (success 0).
/// - No census has completed yet (the first runs at start): no series, success 1.
public struct HwpoisonCollector: Collector {
    /// `collector="hwpoison"`, `--collector.hwpoison`.
    public let name = "hwpoison"
    /// The background census whose last outcome every scrape shows.
    public let census: HwpoisonCensus
    /// Which page-type series a scrape shows.
    public let detail: MetricsDetail

    public init(census: HwpoisonCensus, detail: MetricsDetail = .full) {
        self.census = census
        self.detail = detail
    }

    /// Copies the last census outcome (never waits for a census, never reads a file).
    public func collect(into families: inout [MetricFamily]) throws {
        switch census.outcome {
        case .pending, .absent:
            return
        case .failed(let error):
            throw error
        case .complete(let result):
            families.append(contentsOf: try Self.families(result, detail: detail))
        }
    }

    /// The families for one census result (pure; also used by tests and benchmarks).
    public static func families(_ result: HwpoisonCensusResult, detail: MetricsDetail = .full) throws -> [MetricFamily] {
        var pages: [Metric] = []
        var examined: [Metric] = []
        pages.reserveCapacity(result.nodes.count * HwpoisonPageType.allCases.count)
        for (node, counts) in result.nodes {
            let n = String(node)
            for type in HwpoisonPageType.allCases {
                pages.append(Metric(["node": n, "page_type": type.label], counts[type]))
            }
            examined.append(Metric(["node": n], counts.examined))
        }
        return [
            try MetricFamily(
                name: "mcescan_kernel_hwpoison_pages",
                help: "Page frames with the kernel's HWPOISON flag in the last complete census of /proc/kpageflags, by node and page type (derived from the other KPF flags).",
                type: .gauge, metrics: detail.fold(hwpoisonPages: pages)),
            try MetricFamily(
                name: "mcescan_kernel_hwpoison_census_pages",
                help: "Page frames of the node's memory blocks that the last complete hwpoison census examined.",
                type: .gauge, metrics: examined),
            try MetricFamily(
                name: "mcescan_kernel_hwpoison_census_timestamp_seconds",
                help: "Unix time at which the last complete hwpoison census finished.",
                type: .gauge, unit: "seconds", metrics: [Metric([:], result.finishedAt)]),
            try MetricFamily(
                name: "mcescan_kernel_hwpoison_census_duration_seconds",
                help: "Wall time the last complete hwpoison census took.",
                type: .gauge, unit: "seconds", metrics: [Metric([:], result.duration)]),
        ]
    }

    /// Parses `--collector.hwpoison.interval`: a Prometheus duration (`90s`, `5m`, `1h30m`,
    /// `1500ms`) between `range` bounds (seconds). Errors name the flag and the accepted range.
    public static func parseInterval(_ text: String, flag: String = "--collector.hwpoison.interval",
                                     range: ClosedRange<Double> = HwpoisonCensus.intervalRange) throws(FlagValueError) -> Double {
        let accepted = "\(formatDuration(range.lowerBound))-\(formatDuration(range.upperBound))"
        guard let seconds = try? parseDuration(text) else {
            throw FlagValueError("\(flag): \"\(text)\" is not a duration (e.g. 60s, 5m, 1h; accepted range \(accepted))")
        }
        guard range.contains(seconds) else {
            throw FlagValueError("\(flag): \(text) is out of range (\(accepted))")
        }
        return seconds
    }
}

/// A flag value that cannot be accepted; the message names the flag and the accepted range.
public struct FlagValueError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Names the flag, the value and the accepted range.
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// One complete census: the counts per node (sorted by node) and when it ran.
public struct HwpoisonCensusResult: Sendable, Equatable {
    /// Nodes with memory blocks, ascending.
    public var nodes: [(node: Int, counts: HwpoisonCounts)]
    /// Unix seconds at the end of the census.
    public var finishedAt: Double
    /// Wall seconds the census took.
    public var duration: Double

    public init(nodes: [(node: Int, counts: HwpoisonCounts)], finishedAt: Double, duration: Double) {
        self.nodes = nodes
        self.finishedAt = finishedAt
        self.duration = duration
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.finishedAt == b.finishedAt && a.duration == b.duration
            && a.nodes.map(\.node) == b.nodes.map(\.node) && a.nodes.map(\.counts) == b.nodes.map(\.counts)
    }
}

/// Counts HWPOISON page frames per node by reading `/proc/kpageflags` (under `--path.procfs`)
/// for the PFN ranges of each node's memory blocks (under `--path.sysfs`), in bounded `pread`
/// chunks. `start()` runs a census at once and then every `interval` seconds on a dedicated
/// thread; `stop()` ends it (a census in progress stops at its next chunk). Scrapes read the
/// last outcome under a mutex and never wait for a census.
///
/// Needs root: the kernel makes `/proc/kpageflags` 0400 root, so as another user every census
/// fails with "permission denied" (success 0) and `doctor` says so.
public final class HwpoisonCensus: Sendable {
    /// What a scrape sees.
    public enum Outcome: Sendable, Equatable {
        /// No census has finished yet.
        case pending
        /// This host has no kpageflags or no memory blocks: nothing to report.
        case absent
        case complete(HwpoisonCensusResult)
        case failed(HostFSError)
    }

    /// Default of `--collector.hwpoison.interval` (seconds).
    public static let defaultInterval: Double = 60
    /// Accepted range of `--collector.hwpoison.interval` (seconds).
    public static let intervalRange: ClosedRange<Double> = 1...86400
    /// `intervalRange` as `--help` shows it (`1s-24h`).
    public static var intervalRangeDescription: String {
        "\(formatDuration(intervalRange.lowerBound))-\(formatDuration(intervalRange.upperBound))"
    }
    /// Entries per `pread` (64 KiB of kpageflags).
    public static let defaultChunkEntries = 8192

    /// Roots of `devices/system/memory` (`--path.sysfs`) and `kpageflags` (`--path.procfs`).
    public let sysfs: SysFS
    public let procfs: ProcFS
    /// Seconds between two censuses (`--collector.hwpoison.interval`).
    public let interval: Double
    let pageSize: UInt64
    let chunkEntries: Int
    let logger: Logger
    private let state = Mutex<Outcome>(.pending)
    private let thread: PeriodicThread
    private let failureLog = RateLimitedLog(interval: 600)

    /// Creates a census; nothing runs until `start()` or `runOnce()`. One lifecycle: after
    /// `stop()` the census does not start again. `pageSize` and `chunkEntries` are for tests.
    public init(sysfs: SysFS, procfs: ProcFS, interval: Double = HwpoisonCensus.defaultInterval,
                pageSize: UInt64 = UInt64(sysconf(Int32(_SC_PAGESIZE))),
                chunkEntries: Int = HwpoisonCensus.defaultChunkEntries, logger: Logger) {
        self.sysfs = sysfs
        self.procfs = procfs
        self.interval = interval
        self.pageSize = pageSize
        self.chunkEntries = max(1, chunkEntries)
        self.logger = logger
        self.thread = PeriodicThread(interval: interval)
    }

    /// The last outcome.
    public var outcome: Outcome { state.withLock { $0 } }

    /// Runs one census now on the calling thread and stores its outcome.
    @discardableResult
    public func runOnce() -> Outcome {
        let outcome: Outcome
        do {
            if let result = try census() {
                outcome = .complete(result)
            } else {
                outcome = .absent
            }
        } catch {
            // A census cut short by stop() is not a failure: keep the last outcome, log nothing.
            if thread.isStopping { return .failed(error) }
            outcome = .failed(error)
            if failureLog.shouldLog(key: error.code.rawValue + error.path) {
                logger.warning("hwpoison census failed", metadata: ["err": "\(error)"])
            }
        }
        state.withLock { $0 = outcome }
        return outcome
    }

    /// One census: reads the layout and kpageflags. nil when either source is absent.
    public func census() throws(HostFSError) -> HwpoisonCensusResult? {
        let start = monotonicSeconds()
        guard let layout = try MemoryBlockLayout.read(sysfs: sysfs) else { return nil }
        let ranges = try layout.pfnRanges(pageSize: pageSize)
        guard let file = try KPageFlagsFile(procfs: procfs) else { return nil }
        var buffer = [UInt64](repeating: 0, count: chunkEntries)
        var nodes: [(node: Int, counts: HwpoisonCounts)] = []
        for (node, nodeRanges) in ranges {
            var counts = HwpoisonCounts()
            for range in nodeRanges {
                var pfn = range.lowerBound
                while pfn < range.upperBound {
                    if thread.isStopping {
                        throw HostFSError(.unreadable, path: file.path, "census interrupted by shutdown")
                    }
                    let want = Int(min(UInt64(chunkEntries), range.upperBound - pfn))
                    let got = try buffer.withUnsafeMutableBufferPointer { (buf) throws(HostFSError) -> Int in
                        try file.read(into: UnsafeMutableBufferPointer(rebasing: buf[0..<want]), pfn: pfn)
                    }
                    if got == 0 { break }  // past the end of kpageflags (max_pfn): a hole, nothing to count
                    buffer.withUnsafeBufferPointer { counts.add(UnsafeBufferPointer(rebasing: $0[0..<got])) }
                    pfn += UInt64(got)
                }
            }
            nodes.append((node: node, counts: counts))
        }
        return HwpoisonCensusResult(nodes: nodes, finishedAt: wallClockSeconds(), duration: monotonicSeconds() - start)
    }

    /// Starts the background thread (nice 19): a census now, then one every `interval` seconds.
    public func start() {
        let rc = thread.start(runFirst: true) { [self] in
            if case .complete(let result) = runOnce(), result.duration > interval / 10,
               failureLog.shouldLog(key: "slow-census") {
                logger.warning("hwpoison census takes more than a tenth of its interval; consider a longer --collector.hwpoison.interval", metadata: [
                    "duration_seconds": "\(result.duration)", "interval_seconds": "\(interval)"])
            }
        }
        if rc != 0 {
            logger.error("cannot start the hwpoison census thread", metadata: ["err": "\(String(cString: strerror(rc)))"])
        }
    }

    /// Stops the background thread and waits for it (at most one chunk of a census in progress).
    public func stop() { thread.stop() }
}

extension HwpoisonCollector {
    /// `--collector.hwpoison` and `--collector.hwpoison.interval`. The census walks kpageflags on
    /// its own thread; a scrape shows its last complete result.
    public static let descriptor = CollectorDescriptor(
        name: "hwpoison", help: "Background census of HWPOISON pages per node and page type (/proc/kpageflags).",
        options: [CollectorOption(
            name: "interval", valueName: "duration",
            help: "Time between two hwpoison censuses (\(HwpoisonCensus.intervalRangeDescription), e.g. 60s, 5m).",
            defaultValue: "\(Int(HwpoisonCensus.defaultInterval))s",
            check: { value, flag throws(FlagValueError) in _ = try parseInterval(value, flag: flag) })]
    ) { context, settings in
        let census = HwpoisonCensus(sysfs: context.sysfs, procfs: context.procfs,
                                    interval: try parseInterval(settings["interval"] ?? ""), logger: context.logger)
        census.start()
        return RunningCollector(HwpoisonCollector(census: census, detail: context.detail), stop: { census.stop() })
    }
}
