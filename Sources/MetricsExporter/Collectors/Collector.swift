import Synchronization
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// A source of metric families, gathered on every scrape. One collector per file, each owning its
/// descriptors and its `--collector.<name>` switch.
///
/// `collect` must be quick and must not block on a scan worker: it reads atomics, small sysfs
/// files, or a snapshot a background task keeps. Throwing marks the collector failed for this
/// scrape (`mcescan_scrape_collector_success{collector}` 0) and drops only its own series.
public protocol Collector: Sendable {
    /// The `collector` label and the `--collector.<name>` flag suffix.
    var name: String { get }
    /// Appends this collector's families. A source that is absent on this host appends nothing
    /// and does not throw.
    func collect(into families: inout [MetricFamily]) throws
}

/// Gathers every collector into one sorted, validated `MetricSet`, timing each one and adding the
/// `mcescan_scrape_collector_{success,duration_seconds}` families.
public final class MetricsRegistry: Sendable {
    /// Collectors whose own series come without success/duration meta metrics (build info).
    let unmetered: [any Collector]
    let collectors: [any Collector]
    let logger: Logger
    let failureLog: RateLimitedLog

    public init(collectors: [any Collector], unmetered: [any Collector] = [BuildInfoCollector()], logger: Logger) {
        self.collectors = collectors
        self.unmetered = unmetered
        self.logger = logger
        self.failureLog = RateLimitedLog(interval: 60)
    }

    /// Runs every collector once.
    public func gather() -> MetricSet {
        var all: [MetricFamily] = []
        all.reserveCapacity(64)
        for c in unmetered {
            var own: [MetricFamily] = []
            do {
                try c.collect(into: &own)
                all.append(contentsOf: own)
            } catch {
                report(c.name, error)
            }
        }
        var success: [Metric] = []
        var duration: [Metric] = []
        for c in collectors {
            var own: [MetricFamily] = []
            let start = monotonicSeconds()
            var ok = 1.0
            do {
                try c.collect(into: &own)
                all.append(contentsOf: own)
            } catch {
                ok = 0
                report(c.name, error)
            }
            let elapsed = monotonicSeconds() - start
            success.append(Metric(["collector": c.name], ok))
            duration.append(Metric(["collector": c.name], elapsed))
        }
        if !collectors.isEmpty {
            do {
                all.append(try MetricFamily(
                    name: "mcescan_scrape_collector_success",
                    help: "1 if the collector's last scrape succeeded, 0 if its source was unreadable or malformed.",
                    type: .gauge, metrics: success))
                all.append(try MetricFamily(
                    name: "mcescan_scrape_collector_duration_seconds",
                    help: "Time the collector took in the last scrape.",
                    type: .gauge, unit: "seconds", metrics: duration))
            } catch {
                report("registry", error)
            }
        }
        return MetricSet(dropping: all) { clash in
            self.report("registry", clash)
        }
    }

    private func report(_ collector: String, _ error: any Error) {
        if failureLog.shouldLog(key: collector + ":" + String(describing: type(of: error))) {
            logger.error("collector failed", metadata: ["collector": "\(collector)", "err": "\(error)"])
        }
    }
}

/// Lets one line per key through every `interval` seconds.
final class RateLimitedLog: Sendable {
    private let interval: Double
    private let last = Mutex<[String: Double]>([:])

    init(interval: Double) { self.interval = interval }

    func shouldLog(key: String) -> Bool {
        let now = monotonicSeconds()
        return last.withLock { seen in
            if let t = seen[key], now - t < interval { return false }
            seen[key] = now
            return true
        }
    }
}

/// Seconds on the monotonic clock.
@inline(__always) func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Seconds since the Unix epoch on the real-time clock.
func wallClockSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
