import Testing
import Synchronization
import Glibc
@testable import ScanWorkers

@Suite struct KnobTests {
    @Test(arguments: [
        (-1, 10_000, 3, "pages_to_scan"), (4_194_305, 10_000, 3, "pages_to_scan"),
        (4096, -5, 3, "scan_sleep_millisecs"), (4096, 86_400_001, 3, "scan_sleep_millisecs"),
        (4096, 10_000, 8, "type"), (4096, 10_000, -1, "type"),
    ])
    func rejectsOutOfRangeValues(pages: Int, sleep: Int, type: Int, field: String) {
        #expect {
            try ScanConfig(pagesToScan: pages, sleepMillis: sleep, type: type)
        } throws: { error in
            guard let e = error as? KnobError else { return false }
            return e.field == field && e.message.contains("out of range")
        }
    }

    @Test func acceptsTheEdgesOfEveryRange() throws {
        _ = try ScanConfig(pagesToScan: 0, sleepMillis: 0, type: 0)
        _ = try ScanConfig(pagesToScan: 4_194_304, sleepMillis: 86_400_000, type: 7)
        let d = try ScanConfig()
        #expect(d.pagesToScan == 4096 && d.sleepMillis == 10_000 && d.types == [.arena, .free])
    }

    @Test(arguments: [("arena,free", 3), ("hugetlb", 4), ("7", 7), ("0", 0), ("none", 0), ("free,arena,free", 3)])
    func parsesTypeNamesAndNumbers(text: String, value: Int) throws {
        #expect(try ScanConfig.parseType(text) == value)
    }

    @Test(arguments: ["8", "-1", "arena,", "ram", "", "arena;free"])
    func rejectsBadTypes(text: String) {
        #expect(throws: KnobError.self) { try ScanConfig.parseType(text) }
    }

    @Test func updateIsAllOrNothing() throws {
        let control = NodeControl(node: 0, initial: try ScanConfig(pagesToScan: 100, sleepMillis: 1000, type: 1))
        #expect(throws: KnobError.self) { try control.update(pagesToScan: 5, sleepMillis: 20, type: 9) }
        #expect(control.snapshot() == (try ScanConfig(pagesToScan: 100, sleepMillis: 1000, type: 1)))
        #expect(control.changeCount == 0)
        let new = try control.update(type: 5)
        #expect(new.types == [.arena, .hugetlb] && new.pagesToScan == 100)
        #expect(control.changeCount == 1)
    }

    @Test func aThrowingPersistHookRefusesTheChange() throws {
        struct DiskFull: Error {}
        let seen = Mutex<[ScanConfig]>([])
        let control = NodeControl(node: 3, initial: try ScanConfig()) { node, config in
            #expect(node == 3)
            seen.withLock { $0.append(config) }
            if config.pagesToScan == 13 { throw DiskFull() }
        }
        #expect(throws: DiskFull.self) { try control.update(pagesToScan: 13) }
        #expect(control.snapshot().pagesToScan == 4096)
        try control.update(pagesToScan: 12)
        #expect(control.snapshot().pagesToScan == 12)
        #expect(seen.withLock { $0.map(\.pagesToScan) } == [13, 12])
    }

    @Test(arguments: [(0, 3), (4096, 0)])
    func parkedAtZero(pages: Int, type: Int) throws {
        let (engine, _) = try makeEngine(fixture: "three-node", config: try ScanConfig(pagesToScan: pages, sleepMillis: 10, type: type), nodes: [0])
        try engine.start()
        defer { engine.stop() }
        let node = try #require(engine.node(0))
        #expect(eventually { node.counters.workerState == .parked })
        // Parked means no wake at all, and a trigger does not make it scan: 300 ms is thirty
        // 10 ms sleeps in which a worker that was not parked would have woken and scanned.
        node.trigger()
        usleep(300_000)
        #expect(node.counters.wakeups.load(ordering: .relaxed) == 0)
        #expect(node.counters.type(.arena).scannedPages.load(ordering: .relaxed) == 0)
        // Un-parking wakes it.
        try node.control.update(pagesToScan: 64, type: 1)
        #expect(eventually { node.counters.wakeups.load(ordering: .relaxed) >= 1 && node.counters.workerState == .running })
    }

    /// A worker sleeping 60 s wakes on a knob change (and on a trigger) long before the sleep ends.
    @Test func changeWakesASleepingWorkerAtOnce() throws {
        let (engine, _) = try makeEngine(fixture: "three-node", config: try ScanConfig(pagesToScan: 16, sleepMillis: 60_000, type: 1), nodes: [0])
        try engine.start()
        defer { engine.stop() }
        let node = try #require(engine.node(0))
        #expect(eventually { node.counters.wakeups.load(ordering: .relaxed) == 1 })
        let start = monotonicNow()
        try node.control.update(pagesToScan: 32)
        #expect(eventually(30) { node.counters.wakeups.load(ordering: .relaxed) == 2 })
        node.trigger()
        #expect(eventually(30) { node.counters.wakeups.load(ordering: .relaxed) == 3 })
        #expect(monotonicNow() - start < 60, "both wakes came before the 60 s sleep would have ended")
        // 16, then 32, then the last 16 of the 64-page arena (the cursor wraps: one full scan).
        #expect(node.counters.type(.arena).scannedPages.load(ordering: .relaxed) == 16 + 32 + 16)
        #expect(node.counters.fullScans.load(ordering: .relaxed) == 1)
    }

    @Test func stopEndsASleepAtOnce() throws {
        let (engine, _) = try makeEngine(fixture: "three-node", config: try ScanConfig(pagesToScan: 16, sleepMillis: 86_400_000, type: 1))
        try engine.start()
        #expect(eventually { engine.nodes.allSatisfy { $0.counters.wakeups.load(ordering: .relaxed) == 1 } })
        engine.stop()   // joins every thread; would hang for a day if the sleep were not woken
        #expect(engine.nodes.allSatisfy { $0.counters.type(.arena).regionBytes.load(ordering: .relaxed) == 0 })
    }
}
