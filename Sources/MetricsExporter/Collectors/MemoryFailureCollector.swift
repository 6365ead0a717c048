import HostFS
import Logging
import Synchronization

/// `mcescan_kernel_memory_failure_pages_total{node,result}`: the kernel's per-node memory-failure
/// statistics (Linux 6.3+, CONFIG_MEMORY_FAILURE). Reads
/// `devices/system/node/nodeN/memory_failure/{ignored,failed,delayed,recovered,total}` under
/// `--path.sysfs` on every scrape (ten small files per node).
///
/// All four results are exported from the start (0 until the kernel counts one) for every node
/// that has the directory. No node with the directory (older kernel, no CONFIG_MEMORY_FAILURE):
/// no series, success 1. A missing, unreadable or malformed file inside an existing directory
/// fails the collector. `total` is checked against the sum of the four; a mismatch (which can
/// also be a count that moved between two reads) is logged once per node and not exported.
public struct MemoryFailureCollector: Collector {
    /// `collector="memory_failure"`, `--collector.memory_failure`.
    public let name = "memory_failure"
    let sysfs: SysFS
    let logger: Logger
    private let mismatchLogged = OnceSet()

    /// The `result` label values, in the kernel's MF_* order.
    public static let results = ["ignored", "failed", "delayed", "recovered"]

    /// Reads under `sysfs`; `logger` gets the once-per-node total mismatch warning.
    public init(sysfs: SysFS, logger: Logger) {
        self.sysfs = sysfs
        self.logger = logger
    }

    /// Reads every node's `memory_failure/` files now (ten small reads per node).
    public func collect(into families: inout [MetricFamily]) throws {
        let nodeDir = "devices/system/node"
        guard let names = try sysfs.listIfPresent(nodeDir) else { return }
        var metrics: [Metric] = []
        for name in names {
            guard let node = MemoryBlockLayout.nodeIndex(name) else { continue }
            let dir = "\(nodeDir)/\(name)/memory_failure"
            guard sysfs.exists(dir) else { continue }
            var stats = MemoryFailureStats()
            for (i, result) in Self.results.enumerated() {
                stats.counts[i] = try MemoryFailureStats.parseCount(sysfs.readBytes("\(dir)/\(result)", limit: 64),
                                                                    path: sysfs.path("\(dir)/\(result)"))
            }
            if sysfs.exists("\(dir)/total") {
                stats.total = try MemoryFailureStats.parseCount(sysfs.readBytes("\(dir)/total", limit: 64),
                                                                path: sysfs.path("\(dir)/total"))
            }
            if !stats.isConsistent {
                let first = mismatchLogged.insert("\(node)")
                if first {
                    logger.warning("memory_failure total differs from the sum of its results (logged once per node)", metadata: [
                        "node": "\(node)", "total": "\(stats.total ?? 0)", "sum": "\(stats.sum)"])
                }
            }
            for (i, result) in Self.results.enumerated() {
                metrics.append(Metric(["node": String(node), "result": result], stats.counts[i]))
            }
        }
        guard !metrics.isEmpty else { return }
        families.append(try MetricFamily(
            name: "mcescan_kernel_memory_failure_pages_total",
            help: "Raw poisoned pages the kernel handled on the node, by recovery result (devices/system/node/nodeN/memory_failure/).",
            type: .counter, metrics: metrics))
    }
}

/// Keys already seen, for "log once" warnings.
final class OnceSet: Sendable {
    private let seen = Mutex<Set<String>>([])
    /// True the first time `key` is inserted.
    func insert(_ key: String) -> Bool { seen.withLock { $0.insert(key).inserted } }
}

extension MemoryFailureCollector {
    /// `--collector.memory_failure`.
    public static let descriptor = CollectorDescriptor(
        name: "memory_failure", help: "Per-node kernel memory-failure statistics (sysfs nodeN/memory_failure/).") { context, _ in
        RunningCollector(MemoryFailureCollector(sysfs: context.sysfs, logger: context.logger))
    }
}
