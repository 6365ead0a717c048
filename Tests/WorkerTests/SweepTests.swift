import HostFS
import Testing
@testable import ScanWorkers

@Suite struct SweepTests {
    @Test(arguments: [
        // free, total, take, ratio, allowed
        (UInt64(600), UInt64(1000), UInt64(100), 0.05, true),
        (UInt64(150), UInt64(1000), UInt64(100), 0.05, true),    // leaves 50 = reserve
        (UInt64(149), UInt64(1000), UInt64(100), 0.05, false),
        (UInt64(50), UInt64(1000), UInt64(100), 0.0, false),      // cannot take more than is free
        (UInt64(1000), UInt64(1000), UInt64(0), 1.0, true),
    ])
    func reserveArithmetic(free: UInt64, total: UInt64, take: UInt64, ratio: Double, allowed: Bool) {
        #expect(MemoryGuard.reserveAllows(free: free, total: total, take: take, ratio: ratio) == allowed)
    }

    @Test func guardReadsFixtures() {
        let calm = fixture("three-node"), low = fixture("low-reserve"), busy = fixture("pressure")
        #expect(MemoryGuard(sysfs: calm.sysfs, procfs: calm.procfs).check(node: 0, bytes: 1 << 20) == nil)
        #expect(MemoryGuard(sysfs: low.sysfs, procfs: low.procfs).check(node: 0, bytes: 1 << 20) == .reserve)
        #expect(MemoryGuard(sysfs: low.sysfs, procfs: low.procfs).check(node: 2, bytes: 1 << 20) == nil)
        #expect(MemoryGuard(sysfs: busy.sysfs, procfs: busy.procfs).check(node: 0, bytes: 1 << 20) == .pressure)
        #expect(MemoryGuard(sysfs: busy.sysfs, procfs: busy.procfs, pressureThreshold: 50).check(node: 0, bytes: 1 << 20) == nil)
        #expect(MemoryGuard(sysfs: calm.sysfs, procfs: calm.procfs).check(node: 9, bytes: 1) == .unavailable)
    }

    @Test(arguments: [("low-reserve", BackoffReason.reserve), ("pressure", BackoffReason.pressure)])
    func freeSweepBacksOffAndCountsTheReason(fixtureName: String, reason: BackoffReason) throws {
        let (engine, _) = try makeEngine(fixture: fixtureName, config: try ScanConfig(pagesToScan: 64, sleepMillis: 50, type: 2), nodes: [0])
        try engine.start()
        defer { engine.stop() }
        let node = try #require(engine.node(0))
        #expect(eventually { node.counters.backoffCount(reason) >= 2 })
        #expect(node.counters.workerState == .backoff)
        #expect(node.counters.type(.free).regionBytes.load(ordering: .relaxed) == 0)
        #expect(node.counters.type(.free).scannedPages.load(ordering: .relaxed) == 0)
        for other in BackoffReason.allCases where other != reason { #expect(node.counters.backoffCount(other) == 0) }
    }

    @Test func freeSweepVerifiesTheChunkOfThePreviousWake() throws {
        let (engine, binder) = try makeEngine(fixture: "three-node", config: try ScanConfig(pagesToScan: 64, sleepMillis: 20, type: 2), nodes: [2])
        try engine.start()
        defer { engine.stop() }
        let node = try #require(engine.node(2))
        let c = node.counters.type(.free)
        #expect(eventually { c.scannedPages.load(ordering: .relaxed) >= 128 })
        #expect(c.scannedPages.load(ordering: .relaxed) % 64 == 0)
        #expect(c.scannedBytes.load(ordering: .relaxed) == c.scannedPages.load(ordering: .relaxed) * 4096)
        #expect(c.corruptedWords.load(ordering: .relaxed) == 0)
        #expect(node.counters.fullScans.load(ordering: .relaxed) >= 2)
        #expect(binder.requests.contains(.memory(node: 2, bytes: 64 * 4096)))
        #expect(node.counters.workerState == .running)
    }

    @Test func hugetlbIsUnavailableWithAnEmptyPool() throws {
        let (engine, _) = try makeEngine(fixture: "three-node", config: try ScanConfig(pagesToScan: 4096, sleepMillis: 20, type: 4), nodes: [0])
        try engine.start()
        defer { engine.stop() }
        let node = try #require(engine.node(0))
        #expect(eventually { node.counters.backoffCount(.unavailable) >= 2 })
        #expect(node.counters.type(.hugetlb).available.load(ordering: .relaxed) == 0)
        #expect(node.counters.type(.hugetlb).scannedPages.load(ordering: .relaxed) == 0)
        #expect(node.counters.workerState == .backoff)
        // Arena and free stay available.
        #expect(node.counters.type(.arena).available.load(ordering: .relaxed) == 1)
    }
}
