import ScanWorkers
import Synchronization

/// The scanner families (`mcescan_scan_*`, docs/metrics.md), read from every node's lock-free `NodeCounters` and knobs:
/// a scrape never waits for a worker. Every known label combination (node × memory_type ×
/// direction/code/reason/state/kind) is exported from start, at 0 where nothing happened yet.
/// `coverage_ratio` appears only where `/proc/self/pagemap` gives PFNs. `detail` folds what
/// `--metrics.detail basic` leaves out (`MetricsDetail`).
public struct ScannerCollector: Collector {
    public let name = "scanner"
    let engine: ScanEngine
    let detail: MetricsDetail

    public init(engine: ScanEngine, detail: MetricsDetail = .full) {
        self.engine = engine
        self.detail = detail
    }

    public func collect(into families: inout [MetricFamily]) throws {
        var perType: [String: [Metric]] = [:]
        var perNode: [String: [Metric]] = [:]
        func add(_ family: String, _ labels: [Label], _ value: SampleValue) {
            perNode[family, default: []].append(Metric(labels: labels, value: value))
        }
        for handle in engine.nodes {
            let c = handle.counters
            let node = Label("node", String(handle.node.id))
            let config = handle.control.snapshot()
            for t in MemoryType.allCases {
                let tc = c.type(t)
                let labels = [node, Label("memory_type", t.name)]
                func put(_ family: String, _ v: UInt64) { perType[family, default: []].append(Metric(labels: labels, value: .unsigned(v))) }
                put("scanned_pages_total", tc.scannedPages.load(ordering: .relaxed))
                put("scanned_bytes_total", tc.scannedBytes.load(ordering: .relaxed))
                put("corrupted_words_total", tc.corruptedWords.load(ordering: .relaxed))
                put("poisoned_pages_total", tc.poisonedPages.load(ordering: .relaxed))
                put("replaced_pages_total", tc.replacedPages.load(ordering: .relaxed))
                put("region_bytes", tc.regionBytes.load(ordering: .relaxed))
                put("region_locked_bytes", tc.regionLockedBytes.load(ordering: .relaxed))
                put("region_misplaced_bytes", tc.misplacedBytes.load(ordering: .relaxed))
                put("memory_type_available", tc.available.load(ordering: .relaxed) == 0 ? 0 : 1)
                put("config_memory_type_enabled", config.enables(t) ? 1 : 0)
                add("bit_flips_total", labels + [Label("direction", "0to1")], .unsigned(tc.flips0to1.load(ordering: .relaxed)))
                add("bit_flips_total", labels + [Label("direction", "1to0")], .unsigned(tc.flips1to0.load(ordering: .relaxed)))
            }
            add("full_scans_total", [node], .unsigned(c.fullScans.load(ordering: .relaxed)))
            add("wakeups_total", [node], .unsigned(c.wakeups.load(ordering: .relaxed)))
            add("scan_cpu_seconds_total", [node], .double(Double(c.cpuNanos.load(ordering: .relaxed)) / 1e9))
            add("last_full_scan_timestamp_seconds", [node], .double(c.lastFullScan ?? 0))
            add("node_memory_bytes", [node], .unsigned(c.nodeMemoryBytes.load(ordering: .relaxed)))
            add("config_pages_to_scan", [node], .unsigned(UInt64(config.pagesToScan)))
            add("config_scan_sleep_seconds", [node], .double(Double(config.sleepMillis) / 1000))
            if let ratio = c.coverageRatio {
                add("coverage_ratio", [node], .double(ratio))
            }
            for code in SigbusCode.allCases {
                add("sigbus_total", [node, Label("code", code.name)], .unsigned(c.sigbusCount(code)))
            }
            for reason in BackoffReason.allCases {
                add("scan_backoffs_total", [node, Label("reason", reason.name)], .unsigned(c.backoffCount(reason)))
            }
            for kind in InjectedKind.allCases {
                add("injected_faults_total", [node, Label("kind", kind.name)], .unsigned(c.injectedCount(kind)))
            }
            let state = c.workerState
            for s in WorkerState.allCases {
                add("worker_state", [node, Label("state", s.name)], .unsigned(s == state ? 1 : 0))
            }
            let h = c.wakeHistogram()
            add("wake_duration_seconds", [node], .histogram(HistogramValue(upperBounds: h.bounds, cumulativeCounts: h.cumulative,
                                                                           count: h.count, sum: h.sum)))
        }
        // Host-wide: one event log for every node.
        let dropped = engine.nodes.reduce(UInt64(0)) { $0 &+ $1.counters.eventsDroppedAtCap.load(ordering: .relaxed) }
        add("events_dropped_total", [Label("reason", "verify_cap")], .unsigned(dropped))
        add("event_log_write_errors_total", [], .unsigned(engine.events.writeErrors))
        for d in Self.descriptors {
            guard let built = d.perType ? perType[d.name] : perNode[d.name],
                  let metrics = detail.fold(scanner: d.name, built) else { continue }
            families.append(try MetricFamily(name: "mcescan_" + d.name, help: d.help, type: d.type, unit: d.unit, metrics: metrics))
        }
    }

    struct Descriptor {
        var name: String
        var type: MetricType
        var unit: String?
        var perType: Bool
        var help: String
    }

    /// Every family this collector writes (name without the `mcescan_` prefix).
    static let descriptors: [Descriptor] = [
        .init(name: "scanned_pages_total", type: .counter, perType: true, help: "Pages verified by the node's scan worker, by memory type (huge pages count once)."),
        .init(name: "scanned_bytes_total", type: .counter, unit: "bytes", perType: true, help: "Bytes verified by the node's scan worker, by memory type."),
        .init(name: "corrupted_words_total", type: .counter, perType: true, help: "64-bit words that read back different from the pattern written."),
        .init(name: "bit_flips_total", type: .counter, perType: false, help: "Flipped bits in corrupted words, by direction (0to1: expected 0, read 1)."),
        .init(name: "poisoned_pages_total", type: .counter, perType: true, help: "Pages found poisoned (SIGBUS BUS_MCEERR_AR/AO, or injected poison), counted once per page."),
        .init(name: "replaced_pages_total", type: .counter, perType: true, help: "Faulting pages retired and replaced with fresh memory."),
        .init(name: "region_bytes", type: .gauge, unit: "bytes", perType: true, help: "Memory the worker currently holds for scanning, by memory type."),
        .init(name: "region_locked_bytes", type: .gauge, unit: "bytes", perType: true, help: "Of region_bytes, memory locked in RAM (mlock); 0 where the memlock limit refused."),
        .init(name: "region_misplaced_bytes", type: .gauge, unit: "bytes", perType: true, help: "Of region_bytes, memory the placement check (move_pages) found on another NUMA node than the worker's."),
        .init(name: "memory_type_available", type: .gauge, perType: true, help: "1 if the memory type can be scanned on the node, 0 if not (e.g. empty hugetlb pool)."),
        .init(name: "config_memory_type_enabled", type: .gauge, perType: true, help: "1 if the memory type is enabled in the node's type knob."),
        .init(name: "full_scans_total", type: .counter, perType: false, help: "Times the node's scan cursor wrapped after covering every enabled memory type."),
        .init(name: "wakeups_total", type: .counter, perType: false, help: "Wakes of the node's scan worker that scanned (parked wakes are not counted)."),
        .init(name: "scan_cpu_seconds_total", type: .counter, unit: "seconds", perType: false, help: "CPU time used by the node's scan worker thread."),
        .init(name: "last_full_scan_timestamp_seconds", type: .gauge, unit: "seconds", perType: false, help: "Unix time of the node's last full scan; 0 before the first."),
        .init(name: "coverage_ratio", type: .gauge, perType: false, help: "Share of the node's physical frames verified in the current coverage window (only where /proc/self/pagemap gives PFNs)."),
        .init(name: "node_memory_bytes", type: .gauge, unit: "bytes", perType: false, help: "MemTotal of the NUMA node."),
        .init(name: "config_pages_to_scan", type: .gauge, perType: false, help: "The node's pages_to_scan knob: pages verified per wake."),
        .init(name: "config_scan_sleep_seconds", type: .gauge, unit: "seconds", perType: false, help: "The node's scan_sleep_millisecs knob, in seconds."),
        .init(name: "sigbus_total", type: .counter, perType: false, help: "SIGBUS signals taken and survived while scanning, by si_code."),
        .init(name: "scan_backoffs_total", type: .counter, perType: false, help: "Sweeps that backed off instead of taking memory, by reason."),
        .init(name: "injected_faults_total", type: .counter, perType: false, help: "Faults injected through the control API (fire drills), by kind."),
        .init(name: "worker_state", type: .gauge, perType: false, help: "1 for the state the node's scan worker is in, 0 for the others."),
        .init(name: "events_dropped_total", type: .counter, perType: false, help: "Corrupted words counted without an event of their own (verify_cap: one verify records its first \(ScanRegion.maxMismatchesPerChunk) mismatches in detail)."),
        .init(name: "event_log_write_errors_total", type: .counter, perType: false, help: "Writes of found errors to events.jsonl that failed (the events stay queued in memory and are retried)."),
        .init(name: "wake_duration_seconds", type: .histogram, unit: "seconds", perType: false, help: "Wall time of one wake of the node's scan worker."),
    ]
}
