import MetricsExporter
import HostFS
@testable import ScanWorkers
import Testing

/// `--metrics.detail`: what `basic` folds away from the scanner and hwpoison collectors, and
/// that everything else is the same at both levels.
@Suite struct MetricsDetailTests {
    /// A scan engine over the two-node fixture, never started: its counters are set by hand.
    func fixtureEngine() throws -> ScanEngine {
        let topology = try Topology.read(sysfs: fixtureSys)
        let settings = WorkerSettings(arenaBytes: 256 << 10, memoryGuard: MemoryGuard(sysfs: fixtureSys, procfs: fixtureProc))
        return try ScanEngine(configuration: EngineConfiguration(nodes: nil, initial: try ScanConfig(pagesToScan: 0), worker: settings),
                              topology: topology, binder: RecordingBinder(), procfs: fixtureProc,
                              events: try EventLog(directory: nil))
    }

    func counted() throws -> ScanEngine {
        let engine = try fixtureEngine()
        let node0 = engine.nodes[0].counters
        node0.type(.arena).flips0to1.store(3, ordering: .relaxed)
        node0.type(.free).flips0to1.store(4, ordering: .relaxed)
        node0.type(.hugetlb).flips1to0.store(5, ordering: .relaxed)
        node0.type(.arena).flips1to0.store(UInt64.max, ordering: .relaxed)
        node0.observeWake(seconds: 0.003)
        node0.observeWake(seconds: 0.2)
        return engine
    }

    @Test func defaultLevelIsBasic() {
        #expect(MetricsDetail.default == .basic)
        #expect(MetricsDetail(rawValue: "full") == .full)
        #expect(MetricsDetail(rawValue: "Basic") == nil)
    }

    @Test func basicDropsTheFullOnlyScannerFamilies() throws {
        let engine = try counted()
        let full = try collect(ScannerCollector(engine: engine, detail: .full))
        let basic = try collect(ScannerCollector(engine: engine, detail: .basic))
        let fullOnly = ["scanned_bytes_total", "region_misplaced_bytes", "region_locked_bytes",
                        "memory_type_available", "config_memory_type_enabled"].map { "mcescan_" + $0 }
        for name in fullOnly {
            #expect(full[name]?.metrics.count == 2 * 3, "\(name) at full")
            #expect(basic[name] == nil, "\(name) at basic")
        }
        // Every other family is identical at both levels, except the two that are folded.
        let folded: Set = ["mcescan_bit_flips_total", "mcescan_wake_duration_seconds"]
        #expect(Set(basic.keys) == Set(full.keys).subtracting(fullOnly))
        for (name, family) in basic where !folded.contains(name) {
            #expect(family == full[name], "\(name) differs between basic and full")
        }
    }

    @Test func basicSumsBitFlipsOverMemoryType() throws {
        let engine = try counted()
        let full = try #require(try collect(ScannerCollector(engine: engine, detail: .full))["mcescan_bit_flips_total"])
        let basic = try #require(try collect(ScannerCollector(engine: engine, detail: .basic))["mcescan_bit_flips_total"])
        #expect(full.metrics.count == 2 * 3 * 2)
        #expect(value(full, ["node": "0", "memory_type": "free", "direction": "0to1"]) == 4)
        #expect(basic.metrics.count == 2 * 2)
        #expect(basic.metrics.allSatisfy { $0.labels.map(\.name) == ["direction", "node"] })
        #expect(basic.metrics.first { $0.labels == [Label("direction", "0to1"), Label("node", "0")] }?.value == .unsigned(7))
        // Exact unsigned sum, wrapping like the counters: UInt64.max + 5.
        #expect(basic.metrics.first { $0.labels == [Label("direction", "1to0"), Label("node", "0")] }?.value == .unsigned(4))
        #expect(value(basic, ["node": "1", "direction": "0to1"]) == 0)
    }

    @Test func basicKeepsOnlySumCountAndInfOfTheWakeHistogram() throws {
        let engine = try counted()
        let full = try #require(try collect(ScannerCollector(engine: engine, detail: .full))["mcescan_wake_duration_seconds"])
        let basic = try #require(try collect(ScannerCollector(engine: engine, detail: .basic))["mcescan_wake_duration_seconds"])
        #expect(basic.metrics.count == 2)
        for (b, f) in zip(basic.metrics, full.metrics) {
            guard case .histogram(let bh) = b.value, case .histogram(let fh) = f.value else {
                Issue.record("not a histogram")
                continue
            }
            #expect(b.labels == f.labels)
            #expect(!fh.upperBounds.isEmpty)
            #expect(bh.upperBounds.isEmpty && bh.cumulativeCounts.isEmpty)
            #expect(bh.count == fh.count && bh.sum == fh.sum)
        }
        guard case .histogram(let node0) = basic.metrics[0].value else { return }
        #expect(node0.count == 2)
        #expect(abs(node0.sum - 0.203) < 1e-9)
    }

    @Test func basicExportsOnlyPoisonedPageTypes() throws {
        let census = HwpoisonCensus(sysfs: fixtureSys, procfs: fixtureProc, pageSize: 4096, logger: RecordingLog().logger)
        census.runOnce()
        let full = try collect(HwpoisonCollector(census: census, detail: .full))
        let basic = try collect(HwpoisonCollector(census: census, detail: .basic))
        let fullPages = try #require(full["mcescan_kernel_hwpoison_pages"])
        let basicPages = try #require(basic["mcescan_kernel_hwpoison_pages"])
        #expect(fullPages.metrics.count == 2 * 9)
        let nonZero = fullPages.metrics.filter { value(fullPages, labelDictionary($0)) != 0 }
        #expect(!nonZero.isEmpty && nonZero.count < fullPages.metrics.count)
        #expect(basicPages.metrics == nonZero)
        for name in ["mcescan_kernel_hwpoison_census_pages", "mcescan_kernel_hwpoison_census_timestamp_seconds",
                     "mcescan_kernel_hwpoison_census_duration_seconds"] {
            #expect(basic[name] == full[name], "\(name)")
        }
    }

    @Test func aCleanHostHasNoPageTypeSeriesAtBasic() throws {
        var clean = HwpoisonCounts()
        clean.examined = 32
        let result = HwpoisonCensusResult(nodes: [(node: 0, counts: clean), (node: 1, counts: clean)], finishedAt: 1, duration: 0.1)
        let basic = try HwpoisonCollector.families(result, detail: .basic)
        let full = try HwpoisonCollector.families(result, detail: .full)
        #expect(basic.first { $0.name == "mcescan_kernel_hwpoison_pages" }?.metrics.isEmpty == true)
        #expect(full.first { $0.name == "mcescan_kernel_hwpoison_pages" }?.metrics.count == 18)
        let examined = basic.first { $0.name == "mcescan_kernel_hwpoison_census_pages" }
        #expect(value(examined, ["node": "0"]) == 32 && value(examined, ["node": "1"]) == 32)
    }

    func labelDictionary(_ m: Metric) -> [String: String] {
        Dictionary(uniqueKeysWithValues: m.labels.map { ($0.name, $0.value) })
    }
}
