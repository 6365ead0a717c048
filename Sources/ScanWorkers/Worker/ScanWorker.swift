import HostFS
import CScanKernel
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One node's scan worker: a pinned OS thread at nice 19 running a khugepaged-like loop: wake, scan up to
/// `pages_to_scan` pages from the cursor, sleep `scan_sleep_millisecs`.
final class ScanWorker: @unchecked Sendable {
    let node: NUMANode
    let cpus: [Int]
    let control: NodeControl
    let counters: NodeCounters
    let binder: any NUMABinder
    let settings: WorkerSettings
    let events: EventLog
    let pagemap: PagemapReader?
    let log: EngineLog
    let shared = Locked(SharedArenaState())
    let basePageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

    // Owned by the worker thread.
    var arena: ScanRegion?
    var arenaPass: UInt64 = 0
    var cursorBit = 0
    var cursorPage = 0
    let freeSweep: FreeSweep
    let hugeSweep: FreeSweep
    var coverage: CoverageTracker
    /// Physical frames of the arena's pages (pagemap), read when the arena is made and again when a
    /// page is remapped or every `arenaFramesRefreshPasses` passes (pages can still migrate), instead of
    /// a pagemap walk per wake: that walk was ~10 % of the worker's CPU at the default knobs.
    var arenaFrames: [UInt64] = []
    var arenaFramesKey: (generation: UInt64, pass: UInt64)?
    /// Arena pages [0, n) whose frames are marked in coverage window `epoch`: marking them again
    /// each pass adds nothing, so a pass marks only what the window has not seen.
    var arenaMarked: (epoch: UInt64, pages: Int) = (0, 0)
    static let arenaFramesRefreshPasses: UInt64 = 64
    /// Physical frames of the held free / hugetlb chunk, read when it was taken (one per chunk page):
    /// its coverage, and the physical address of a page that faults later (its frame is gone then).
    var sweepFrames: [Int: (base: UnsafeMutableRawPointer, frames: [UInt64])] = [:]
    /// MemTotal of the node is re-read at most this often (it changes only with memory hotplug).
    static let memTotalRefreshSeconds = 60.0
    var memTotalReadAt = -Double.infinity
    let nonce: UInt64
    var sweepSerial: UInt64 = 0
    var loggedLock = false
    /// The last arena allocation error logged: repeated on every wake, it is logged once until it
    /// changes or the arena is allocated again.
    var arenaFailure: String?
    var thread: pthread_t?

    init(node: NUMANode, cpus: [Int], control: NodeControl, counters: NodeCounters, binder: any NUMABinder,
         settings: WorkerSettings, events: EventLog, pagemap: PagemapReader?, log: @escaping EngineLog) {
        self.node = node
        self.cpus = cpus
        self.control = control
        self.counters = counters
        self.binder = binder
        self.settings = settings
        self.events = events
        self.pagemap = pagemap
        self.log = log
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        freeSweep = FreeSweep(type: .free, node: node.id, binder: binder, memoryGuard: settings.memoryGuard, basePageSize: page)
        hugeSweep = FreeSweep(type: .hugetlb, node: node.id, binder: binder, memoryGuard: settings.memoryGuard, basePageSize: page)
        coverage = CoverageTracker(window: settings.coverageWindow, now: monotonicNow())
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        nonce = mix64(UInt64(bitPattern: Int64(ts.tv_nsec)) ^ UInt64(node.id) << 48)
        counters.nodeMemoryBytes.store(node.memoryBytes, ordering: .relaxed)
        refreshHugetlbAvailability()
        if pagemap?.isUsable == true {
            counters.coverageKnown.store(1, ordering: .relaxed)
            counters.coverageTotal.store(node.memoryBytes / UInt64(page), ordering: .relaxed)
        }
    }

    // MARK: thread

    /// Starts the OS thread.
    func start() throws(BindError) {
        var tid = pthread_t()
        let box = Unmanaged.passRetained(self).toOpaque()
        let rc = pthread_create(&tid, nil, { arg in
            let worker = Unmanaged<ScanWorker>.fromOpaque(arg!).takeRetainedValue()
            worker.threadMain()
            return nil
        }, box)
        if rc != 0 {
            Unmanaged<ScanWorker>.fromOpaque(box).release()
            throw BindError(.failed, "pthread_create: \(String(cString: strerror(rc)))")
        }
        thread = tid
    }

    /// Asks the thread to stop and waits for it.
    func stopAndJoin() {
        control.requestStop()
        if let t = thread {
            pthread_join(t, nil)
            thread = nil
        }
    }

    func threadMain() {
        do {
            try binder.bindCurrentThread(node: node.id, cpus: cpus)
        } catch {
            counters.fail("cannot pin the worker of node \(node.id) to CPUs \(cpus): \(error.message)")
            log(.error, "worker failed", ["node": "\(node.id)", "err": error.message])
            return
        }
        // Linux: the nice value is per thread, and who=0 is the calling thread.
        if setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 19) != 0 {
            log(.warning, "cannot lower the worker's priority", ["node": "\(node.id)", "err": String(cString: strerror(errno))])
        }
        if mcescan_prepare_thread() != 0 {
            let err = String(cString: strerror(errno))
            counters.fail("cannot install the SIGBUS handler on node \(node.id)'s worker: \(err)")
            log(.error, "worker failed", ["node": "\(node.id)", "err": err])
            return
        }
        log(.info, "worker started", ["node": "\(node.id)", "cpus": cpus.map(String.init).joined(separator: ",")])
        loop()
        freeSweep.release()
        hugeSweep.release()
        dropArena()
    }

    func loop() {
        while !control.isStopping {
            // Found errors the disk refused are retried on every wake (cheap when none wait);
            // a parked worker wakes once a second for that while any wait.
            let durable = events.retryPending()
            let config = control.snapshot()
            syncTypes(config)
            if config.isParked {
                counters.setState(.parked)
                if control.wait(millis: durable ? nil : 1000) == .stop { return }
                continue
            }
            wake(config)
            if control.wait(millis: config.sleepMillis) == .stop { return }
        }
    }

    /// Releases what a disabled type holds.
    func syncTypes(_ config: ScanConfig) {
        if !config.enables(.arena) || config.isParked, arena != nil { dropArena() }
        if !config.enables(.free) || config.isParked, freeSweep.held != nil {
            freeSweep.release()
            setRegion(.free, bytes: 0, locked: 0)
        }
        if !config.enables(.hugetlb) || config.isParked, hugeSweep.held != nil {
            hugeSweep.release()
            setRegion(.hugetlb, bytes: 0, locked: 0)
        }
    }

    // MARK: one wake

    /// Scans up to `pages_to_scan` pages from the cursor over the enabled types in bit order.
    func wake(_ config: ScanConfig) {
        let wall0 = monotonicNow()
        let cpu0 = threadCPUNanos()
        refreshMemTotal(now: wall0)
        coverage.roll(now: wall0)
        refreshHugetlbAvailability()
        claimAsyncPoison()

        let enabled = config.types.map(\.bit)
        if !enabled.contains(cursorBit) {
            cursorBit = enabled.first { $0 > cursorBit } ?? enabled[0]
            cursorPage = 0
        }
        var remaining = config.pagesToScan
        var anyScanned = false
        var anyBackoff = false
        var visits = 0
        while remaining > 0 && visits <= enabled.count {
            let type = MemoryType.allCases[cursorBit]
            var typeDone = true
            switch type {
            case .arena:
                if let visit = visitArena(budgetPages: remaining) {
                    remaining -= visit.pages
                    anyScanned = true
                    typeDone = visit.passDone
                } else {
                    anyBackoff = true
                }
            case .free, .hugetlb:
                let sweep = type == .free ? freeSweep : hugeSweep
                switch visitSweep(sweep, budgetPages: remaining) {
                case .took(let pages): remaining -= min(remaining, pages); anyScanned = true
                case .backoff: anyBackoff = true
                case .nothing: break
                }
            }
            visits += 1
            if !typeDone { break }
            cursorPage = 0
            if let next = enabled.first(where: { $0 > cursorBit }) {
                cursorBit = next
            } else {
                cursorBit = enabled[0]
                counters.fullScans.add(1, ordering: .relaxed)
                counters.lastFullScanBits.store(wallNow().bitPattern, ordering: .relaxed)
                break
            }
        }
        counters.setState(anyBackoff && !anyScanned ? .backoff : .running)
        counters.coverageFrames.store(coverage.distinct, ordering: .relaxed)
        counters.cpuNanos.add(threadCPUNanos() &- cpu0, ordering: .relaxed)
        counters.observeWake(seconds: monotonicNow() - wall0)
        // Counted when the wake's work is done, so a reader that sees N wakeups sees their scans.
        counters.wakeups.add(1, ordering: .releasing)
    }

    /// `node_memory_bytes` (and the coverage total) from the node's MemTotal, at most every
    /// `memTotalRefreshSeconds`.
    func refreshMemTotal(now: Double) {
        guard now - memTotalReadAt >= Self.memTotalRefreshSeconds else { return }
        memTotalReadAt = now
        if let total = settings.memoryGuard.memTotal(node: node.id) {
            counters.nodeMemoryBytes.store(total, ordering: .relaxed)
            if pagemap?.isUsable == true { counters.coverageTotal.store(total / UInt64(basePageSize), ordering: .relaxed) }
        }
    }

    /// `memory_type_available{memory_type="hugetlb"}`: 1 while the node's 2 MiB pool has a free
    /// page (`nodeN/hugepages/hugepages-2048kB/free_hugepages`), re-read every wake whether or not
    /// the type is enabled. Arena and free are always available (their failures are back-offs).
    func refreshHugetlbAvailability() {
        let free = settings.memoryGuard.freeHugePages(node: node.id, sizeKB: FreeSweep.hugePageKB)
        counters.type(.hugetlb).available.store(free > 0 || hugeSweep.held != nil ? 1 : 0, ordering: .relaxed)
    }

    // MARK: gauges and placement

    func setRegion(_ type: MemoryType, bytes: UInt64, locked: UInt64) {
        let c = counters.type(type)
        c.regionBytes.store(bytes, ordering: .relaxed)
        c.regionLockedBytes.store(locked, ordering: .relaxed)
        if bytes == 0 { c.misplacedBytes.store(0, ordering: .relaxed) }
    }

    /// Pages sampled per region by the placement check.
    static let placementSamples = 64

    /// Asks the binder where the pages landed (`placementSamples` pages spread evenly over the
    /// region, scaled up); a mismatch is logged and exported as `region_misplaced_bytes`, never ignored.
    func checkPlacement(_ type: MemoryType, base: UnsafeMutableRawPointer, pages: Int, pageSize: Int) {
        let step = max(1, pages / Self.placementSamples)
        let sampled = (pages + step - 1) / step
        let nodes = binder.nodesOfPages(base, pageCount: sampled, pageStride: pageSize * step)
        let wrong = nodes.filter { $0 != nil && $0 != node.id }.count
        let misplaced = UInt64(wrong) * UInt64(step) * UInt64(pageSize)
        counters.type(type).misplacedBytes.store(min(misplaced, UInt64(pages * pageSize)), ordering: .relaxed)
        if wrong > 0 {
            let elsewhere = Set(nodes.compactMap { $0 }.filter { $0 != node.id }).sorted().map(String.init).joined(separator: ",")
            log(.warning, "memory placed on another node than requested", [
                "node": "\(node.id)", "memory_type": type.name, "misplaced_bytes": "\(misplaced)", "found_on": elsewhere])
        }
    }
}
