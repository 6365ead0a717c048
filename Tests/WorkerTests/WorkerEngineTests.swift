import HostFS
import Testing
import Glibc
import CScanKernel
@testable import ScanWorkers

@Suite struct WorkerEngineTests {
    /// Fake 3-node topology with a CPU-less node: one worker per node, each pinned to the right
    /// CPUs, each arena bound to its own node, through the recording binder.
    @Test func oneWorkerPerNodeWithTheRightCPUsAndMemoryNode() throws {
        let arena = 128 << 10
        let (engine, binder) = try makeEngine(fixture: "three-node", config: try ScanConfig(pagesToScan: 8, sleepMillis: 60_000, type: 1),
                                              arenaBytes: arena)
        #expect(engine.nodes.map(\.node.id) == [0, 1, 2])
        #expect(engine.nodes.map(\.cpus) == [[0, 1], [2, 3], [2, 3]])
        try engine.start()
        defer { engine.stop() }
        #expect(eventually { engine.nodes.allSatisfy { $0.counters.wakeups.load(ordering: .relaxed) >= 1 } })
        let requests = binder.requests
        #expect(Set(requests.filter { if case .thread = $0 { true } else { false } }) ==
                [.thread(node: 0, cpus: [0, 1]), .thread(node: 1, cpus: [2, 3]), .thread(node: 2, cpus: [2, 3])])
        for n in 0...2 {
            #expect(requests.filter { $0 == .memory(node: n, bytes: arena) }.count == 1, "arena of node \(n) bound once to node \(n)")
            let c = engine.node(n)!.counters.type(.arena)
            #expect(c.regionBytes.load(ordering: .relaxed) == UInt64(arena))
            #expect(c.misplacedBytes.load(ordering: .relaxed) == 0)
        }
        #expect(engine.failedWorkers().isEmpty)
    }

    @Test func aMisplacedRegionIsExported() throws {
        let (engine, _) = try makeEngine(fixture: "three-node", config: try ScanConfig(pagesToScan: 8, sleepMillis: 60_000, type: 1),
                                         arenaBytes: 64 << 10, nodes: [1], binder: RecordingBinder(misplaceTo: 0))
        try engine.start()
        defer { engine.stop() }
        let c = try #require(engine.node(1)).counters.type(.arena)
        #expect(eventually { c.misplacedBytes.load(ordering: .relaxed) == 64 << 10 })
    }

    @Test func workerRunsAtNice19() throws {
        let (engine, _) = try makeEngine(fixture: "three-node", config: try ScanConfig(pagesToScan: 8, sleepMillis: 60_000, type: 1), nodes: [0])
        try engine.start()
        defer { engine.stop() }
        #expect(eventually { engine.nodes[0].counters.wakeups.load(ordering: .relaxed) == 1 })
        // Find the worker thread among our tasks by its nice value (field 19 of stat).
        let me = getpid()
        var nices: [Int] = []
        for task in (try? ProcFS(root: "/proc").list("\(me)/task")) ?? [] {
            if let stat = try? ProcFS(root: "/proc").readString("\(me)/task/\(task)/stat"),
               let close = stat.lastIndex(of: ")") {
                let fields = stat[stat.index(after: close)...].split(separator: " ")
                if fields.count > 16, let nice = Int(fields[16]) { nices.append(nice) }
            }
        }
        #expect(nices.contains(19))
        #expect(getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0) != 19, "only the worker thread is reniced")
    }

    @Test func fullScansCountCursorWraps() throws {
        // 64-page arena, 32 pages a wake: a wrap every second wake.
        let (engine, _) = try makeEngine(fixture: "three-node", config: try ScanConfig(pagesToScan: 32, sleepMillis: 60_000, type: 1),
                                         arenaBytes: 256 << 10, nodes: [0])
        try engine.start()
        defer { engine.stop() }
        let node = engine.nodes[0]
        for wake in 1...6 {
            #expect(eventually { node.counters.wakeups.load(ordering: .relaxed) == UInt64(wake) })
            #expect(node.counters.fullScans.load(ordering: .relaxed) == UInt64(wake / 2))
            #expect(node.counters.type(.arena).scannedPages.load(ordering: .relaxed) == UInt64(32 * wake))
            node.trigger()
        }
        #expect(node.counters.lastFullScan != nil)
        #expect(node.counters.type(.arena).corruptedWords.load(ordering: .relaxed) == 0, "alternating patterns verify clean")
        let h = node.counters.wakeHistogram()
        #expect(h.count >= 6 && h.cumulative.last! <= h.count && h.sum > 0)
        #expect(node.counters.cpuNanos.load(ordering: .relaxed) > 0)
    }

    @Test func anInjectedBitFlipIsFoundCountedAndLogged() throws {
        let dir = temporaryDirectory()
        let log = try EventLog(directory: dir)
        let engine = try startedArenaEngine(arenaBytes: 256 << 10, events: log)
        defer { engine.stop() }
        let node = engine.nodes[0]
        let offsets = try node.inject(.bitflip, count: 2)
        #expect(offsets.count == 2)
        #expect(node.counters.injectedCount(.bitflip) == 2)
        node.trigger()
        let arena = node.counters.type(.arena)
        #expect(eventually { arena.corruptedWords.load(ordering: .relaxed) == 2 })
        #expect(arena.flips0to1.load(ordering: .relaxed) + arena.flips1to0.load(ordering: .relaxed) == 2)
        let events = log.events()
        #expect(events.count == 2)
        #expect(events.allSatisfy { $0.kind == .injected && $0.bits == 1 && $0.node == 0 && $0.memoryType == .arena })
        #expect(Set(events.map(\.offset)) == Set(offsets))
        // Durable: the same events are in events.jsonl.
        let lines = try ProcFS(root: dir).readString("events.jsonl").split(separator: "\n")
        #expect(lines.map(String.init) == events.map(\.jsonLine))
        // The damaged words were rewritten: the next passes are clean again.
        node.trigger(); node.trigger()
        #expect(eventually { node.counters.wakeups.load(ordering: .relaxed) >= 3 })
        node.trigger()
        #expect(eventually { node.counters.wakeups.load(ordering: .relaxed) >= 4 })
        #expect(arena.corruptedWords.load(ordering: .relaxed) == 2)
    }

    /// One verify records its first mismatches as events; the rest are counted in the ordinary
    /// counters and, so that nothing is dropped silently, in eventsDroppedAtCap.
    @Test func mismatchesBeyondTheEventCapAreCountedAsDropped() throws {
        let log = try EventLog(directory: nil)
        let engine = try startedArenaEngine(arenaBytes: 256 << 10, events: log)
        defer { engine.stop() }
        let node = engine.nodes[0]
        let offsets = try node.inject(.bitflip, count: 40)
        node.trigger()
        let arena = node.counters.type(.arena)
        #expect(eventually { arena.corruptedWords.load(ordering: .relaxed) == UInt64(offsets.count) })
        let recorded = UInt64(log.events().count)
        #expect(recorded >= UInt64(ScanRegion.maxMismatchesPerChunk) && recorded < UInt64(offsets.count))
        #expect(node.counters.eventsDroppedAtCap.load(ordering: .relaxed) == UInt64(offsets.count) - recorded)
    }

    /// Injections repeated before the scan comes round land on distinct words, so every one is
    /// found exactly once; poison avoids pages holding a pending flip, and a full arena says so.
    @Test func repeatedInjectionsAreDistinctAndAllFound() throws {
        let engine = try startedArenaEngine(arenaBytes: 256 << 10)
        defer { engine.stop() }
        let node = engine.nodes[0]
        var flips: [UInt64] = []
        for _ in 0..<9 { flips += try node.inject(.bitflip, count: 32) }   // 32 of the 64 pages, 9 words each
        #expect(flips.count == 288 && Set(flips).count == 288)
        let poisoned = try node.inject(.poison, count: 1)
        #expect(poisoned.count == 1)
        #expect(!flips.contains { $0 / 4096 == poisoned[0] / 4096 }, "poison lands on a page without a pending flip")
        node.trigger()
        let arena = node.counters.type(.arena)
        #expect(eventually { arena.corruptedWords.load(ordering: .relaxed) == 288 })
        #expect(eventually { arena.poisonedPages.load(ordering: .relaxed) == 1 })
        #expect(arena.flips0to1.load(ordering: .relaxed) + arena.flips1to0.load(ordering: .relaxed) == 288)
        #expect(node.counters.injectedCount(.bitflip) == 288)
    }

    @Test func anArenaFullOfPendingPoisonRefusesMore() throws {
        let engine = try startedArenaEngine(arenaBytes: 64 << 10)
        defer { engine.stop() }
        let node = engine.nodes[0]
        #expect(try node.inject(.poison, count: 10).count == 10)
        #expect(try node.inject(.poison, count: 10).count == 6, "16 pages: only 6 left")
        #expect { try node.inject(.poison, count: 1) } throws: { ($0 as? InjectError)?.code == .arenaFull }
        #expect { try node.inject(.bitflip, count: 1) } throws: { ($0 as? InjectError)?.code == .arenaFull }
        #expect(node.counters.injectedCount(.poison) == 16)
    }

    /// An arena that cannot be had is retried on every wake but logged once, and its recovery once.
    @Test func aFailingArenaIsLoggedOnceNotEveryWake() throws {
        let binder = RecordingBinder()
        binder.refusesMemory = true
        let lines = Locked<[String]>([])
        let f = fixture("three-node")
        let engine = try ScanEngine(
            configuration: EngineConfiguration(nodes: [0], initial: try ScanConfig(pagesToScan: 16, sleepMillis: 5, type: 1),
                                               worker: WorkerSettings(arenaBytes: 64 << 10, memoryGuard: MemoryGuard(sysfs: f.sysfs, procfs: f.procfs))),
            topology: try Topology.read(sysfs: f.sysfs), binder: binder, procfs: f.procfs, events: try EventLog(directory: nil),
            log: { _, message, _ in lines.withLock { $0.append(message) } })
        try engine.start()
        defer { engine.stop() }
        let attempts = { binder.requests.filter { if case .memory = $0 { return true } else { return false } }.count }
        #expect(eventually { attempts() >= 5 })
        #expect(lines.withLock { $0.filter { $0.hasPrefix("cannot allocate the arena") }.count } == 1)
        binder.refusesMemory = false
        #expect(eventually { engine.nodes[0].counters.type(.arena).regionBytes.load(ordering: .relaxed) == 64 << 10 })
        #expect(lines.withLock { $0.filter { $0.hasPrefix("arena allocated after earlier failures") }.count } == 1)
    }

    /// Synthetic poison (a truncated memfd page: a real SIGBUS BUS_ADRERR) is survived, counted as
    /// injected poison in the ordinary counters, retired and replaced; the scan goes on clean.
    @Test func injectedPoisonIsSurvivedCountedAndReplaced() throws {
        let engine = try startedArenaEngine(arenaBytes: 256 << 10)
        defer { engine.stop() }
        let node = engine.nodes[0]
        let offsets = try node.inject(.poison, count: 3)
        #expect(offsets.count == 3 && node.counters.injectedCount(.poison) == 3)
        node.trigger()
        let arena = node.counters.type(.arena)
        #expect(eventually { arena.poisonedPages.load(ordering: .relaxed) == 3 })
        #expect(node.counters.sigbusCount(.adrerr) == 3)
        #expect(arena.replacedPages.load(ordering: .relaxed) == 3)
        #expect(arena.corruptedWords.load(ordering: .relaxed) == 0)
        #expect(engine.events.events().map(\.kind) == [.injected, .injected, .injected])
        #expect(Set(engine.events.events().map(\.offset)) == Set(offsets))
        // The replaced pages hold the right pattern: further passes are clean and fault-free.
        for wake in 3...5 {
            node.trigger()
            #expect(eventually { node.counters.wakeups.load(ordering: .relaxed) >= UInt64(wake) })
        }
        #expect(arena.poisonedPages.load(ordering: .relaxed) == 3)
        #expect(arena.corruptedWords.load(ordering: .relaxed) == 0)
        #expect(node.counters.workerState == .running)
    }

    @Test func injectionNeedsAnArena() throws {
        let (engine, _) = try makeEngine(fixture: "three-node", config: try ScanConfig(pagesToScan: 64, sleepMillis: 60_000, type: 2), nodes: [0])
        try engine.start()
        defer { engine.stop() }
        // The worker has woken (type free only): no arena is made, so there is none to inject into.
        #expect(eventually { engine.nodes[0].counters.wakeups.load(ordering: .relaxed) >= 1 })
        #expect { try engine.nodes[0].inject(.bitflip, count: 1) } throws: { ($0 as? InjectError)?.code == .noArena }
        #expect { try engine.nodes[0].inject(.bitflip, count: 65) } throws: { ($0 as? InjectError)?.code == .invalidArgument }
    }

    @Test func unknownScanNodeIsRejected() {
        #expect {
            try makeEngine(fixture: "three-node", config: try ScanConfig(), nodes: [0, 4])
        } throws: { error in
            (error as? TopologyError)?.code == .unknownNode
        }
    }
}

/// The live host through the real libnuma binder: pinning, mbind, the move_pages placement check,
/// and (as root) pagemap PFNs for coverage and physical addresses.
@Suite struct WorkerLiveHostTests {
    /// One worker on the first node with memory, a 1 MiB arena scanned whole every wake (60 s sleep),
    /// the real libnuma binder; started.
    func liveEngine() throws -> (ScanEngine, EventLog) {
        let sysfs = SysFS(root: "/sys"), procfs = ProcFS(root: "/proc")
        let topology = try Topology.read(sysfs: sysfs)
        let node = try #require(topology.nodes.first { $0.memoryBytes > 0 }).id
        let log = try EventLog(directory: nil)
        let settings = WorkerSettings(arenaBytes: 1 << 20, memoryGuard: MemoryGuard(sysfs: sysfs, procfs: procfs))
        let engine = try ScanEngine(configuration: EngineConfiguration(nodes: [node], initial: try ScanConfig(pagesToScan: 256, sleepMillis: 60_000, type: 1), worker: settings),
                                    topology: topology, binder: LibNUMABinder(topology: topology), procfs: procfs, events: log)
        try engine.start()
        return (engine, log)
    }

    @Test func liveNodeZeroScansPlacedAndCovered() throws {
        let (engine, log) = try liveEngine()
        defer { engine.stop() }
        let h = engine.nodes[0]
        #expect(eventually { h.counters.wakeups.load(ordering: .relaxed) == 1 })
        #expect(h.counters.workerState == .running)
        let arena = h.counters.type(.arena)
        #expect(arena.regionBytes.load(ordering: .relaxed) == 1 << 20)
        #expect(arena.misplacedBytes.load(ordering: .relaxed) == 0, "move_pages found the arena on node \(h.node.id)")
        try h.inject(.bitflip, count: 1)
        h.trigger()
        #expect(eventually { arena.corruptedWords.load(ordering: .relaxed) == 1 })
        let event = try #require(log.events().first)
        if engine.pagemapUsable {
            #expect((h.counters.coverageRatio ?? 0) > 0)
            #expect(event.physAddr != nil && event.physAddr! % 8 == 0)
        } else {
            #expect(h.counters.coverageRatio == nil)
            #expect(event.physAddr == nil)
        }
    }

    // A poison notice names a page whose frame the kernel has already taken away (pagemap shows
    // none after it): its event gets the physical address from the arena's frames read before.
    @Test func aPoisonNoticeCarriesThePhysicalAddressReadBefore() throws {
        let (engine, log) = try liveEngine()
        defer { engine.stop() }
        let h = engine.nodes[0]
        #expect(eventually { h.counters.wakeups.load(ordering: .relaxed) == 1 })
        let base = try #require(h.worker.shared.withLock { $0.region?.base })
        let address = base + 3 * Int(sysconf(Int32(_SC_PAGESIZE))) + 72
        let expected = PagemapReader(procfs: ProcFS(root: "/proc")).physicalAddress(of: UInt(bitPattern: address))
        #expect(mcescan_raise_sigbus(address, SigbusSiCode.mceerrAO, 12) == 0)
        h.trigger()
        #expect(eventually { h.counters.type(.arena).poisonedPages.load(ordering: .relaxed) == 1 })
        let event = try #require(log.events().first)
        #expect(event.kind == .poison)
        #expect(event.offset == UInt64(3 * Int(sysconf(Int32(_SC_PAGESIZE)))))
        if engine.pagemapUsable {
            #expect(expected != nil && event.physAddr == expected)
        } else {
            #expect(event.physAddr == nil)
        }
    }
}
