import CScanKernel
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Severity of an engine log line.
public enum EngineLogLevel: Sendable { case debug, info, warning, error }

/// Where ScanWorkers writes its log lines (the executable plugs its logger in; ScanWorkers has no
/// logging dependency).
public typealias EngineLog = @Sendable (_ level: EngineLogLevel, _ message: String, _ metadata: [String: String]) -> Void

/// Settings of every worker that do not change while running.
public struct WorkerSettings: Sendable {
    /// Default `--scan.arena-bytes`: 64 MiB.
    public static let defaultArenaBytes = 64 << 20
    /// Default `--scan.coverage-window`: 24 h.
    public static let defaultCoverageWindow = 86_400.0

    /// Size of the pinned arena per node.
    public var arenaBytes: Int
    /// Window of `coverage_ratio`, seconds.
    public var coverageWindow: Double
    /// Reserve and pressure checks of the free and hugetlb sweeps.
    public var memoryGuard: MemoryGuard

    public init(arenaBytes: Int = defaultArenaBytes, coverageWindow: Double = defaultCoverageWindow, memoryGuard: MemoryGuard) {
        self.arenaBytes = arenaBytes
        self.coverageWindow = coverageWindow
        self.memoryGuard = memoryGuard
    }
}

/// Why a fault could not be injected.
public typealias InjectError = CodedError<InjectFailure>

/// The kinds of `InjectError`.
public enum InjectFailure: String, Sendable {
    /// The node's arena is not allocated (type `arena` disabled, or the worker has not woken yet).
    case noArena
    /// The region refused (the kernel does not support it, no privilege).
    case unsupported
    /// `count` out of range.
    case invalidArgument
}

/// How `inject` makes a poisoned page.
public enum InjectMechanism: String, Sendable {
    /// A page of the arena's memfd truncated away: a real SIGBUS (BUS_ADRERR), no kernel state changes.
    case synthetic
    /// `MADV_HWPOISON`: retires a real physical page until reboot (CAP_SYS_ADMIN, CONFIG_MEMORY_FAILURE).
    case kernel
}

/// State the control API shares with the worker: the arena (for fault injection) and what was
/// injected (so its events carry kind `injected`).
struct SharedArenaState {
    var region: ScanRegion?
    var cursorPage = 0
    var injectedWords = Set<Int>()   // byte offsets
    /// Injected page faults not yet found, with the page's physical address read before the
    /// injection (after MADV_HWPOISON the pagemap entry no longer holds the frame).
    var injectedPages: [Int: UInt64?] = [:]
}

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
    private var arena: ScanRegion?
    private var arenaPass: UInt64 = 0
    private var cursorBit = 0
    private var cursorPage = 0
    private let freeSweep: FreeSweep
    private let hugeSweep: FreeSweep
    private var coverage: CoverageTracker
    /// Physical frames of the arena's pages (pagemap), read when the arena is made and again when a
    /// page is remapped or every `arenaFramesRefreshPasses` passes (pages can still migrate), instead of
    /// a pagemap walk per wake: that walk was ~10 % of the worker's CPU at the default knobs.
    private var arenaFrames: [UInt64] = []
    private var arenaFramesKey: (generation: UInt64, pass: UInt64)?
    /// Arena pages [0, n) whose frames are marked in coverage window `epoch`: marking them again
    /// each pass adds nothing, so a pass marks only what the window has not seen.
    private var arenaMarked: (epoch: UInt64, pages: Int) = (0, 0)
    static let arenaFramesRefreshPasses: UInt64 = 64
    /// Physical frames of the held free / hugetlb chunk, read when it was taken (one per chunk page):
    /// its coverage, and the physical address of a page that faults later (its frame is gone then).
    private var sweepFrames: [Int: (base: UnsafeMutableRawPointer, frames: [UInt64])] = [:]
    /// MemTotal of the node is re-read at most this often (it changes only with memory hotplug).
    static let memTotalRefreshSeconds = 60.0
    private var memTotalReadAt = -Double.infinity
    private let nonce: UInt64
    private var sweepSerial: UInt64 = 0
    private var loggedLock = false
    private var thread: pthread_t?

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

    private func threadMain() {
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

    private func loop() {
        while !control.isStopping {
            let config = control.snapshot()
            syncTypes(config)
            if config.isParked {
                counters.setState(.parked)
                if control.wait(millis: nil) == .stop { return }
                continue
            }
            wake(config)
            if control.wait(millis: config.sleepMillis) == .stop { return }
        }
    }

    /// Releases what a disabled type holds.
    private func syncTypes(_ config: ScanConfig) {
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
        if wall0 - memTotalReadAt >= Self.memTotalRefreshSeconds {
            memTotalReadAt = wall0
            if let total = settings.memoryGuard.memTotal(node: node.id) {
                counters.nodeMemoryBytes.store(total, ordering: .relaxed)
                if pagemap?.isUsable == true { counters.coverageTotal.store(total / UInt64(basePageSize), ordering: .relaxed) }
            }
        }
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
                if let region = ensureArena() {
                    let n = min(remaining, region.pageCount - cursorPage)
                    scanArena(region, pages: cursorPage..<(cursorPage + n))
                    cursorPage += n
                    remaining -= n
                    anyScanned = true
                    typeDone = cursorPage >= region.pageCount
                    if typeDone { arenaPass += 1 }
                    shared.withLock { $0.cursorPage = cursorPage % max(1, region.pageCount) }
                } else {
                    counters.countBackoff(.unavailable)
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

    /// `memory_type_available{memory_type="hugetlb"}`: 1 while the node's 2 MiB pool has a free
    /// page (`nodeN/hugepages/hugepages-2048kB/free_hugepages`), re-read every wake whether or not
    /// the type is enabled. Arena and free are always available (their failures are back-offs).
    private func refreshHugetlbAvailability() {
        let free = settings.memoryGuard.freeHugePages(node: node.id, sizeKB: FreeSweep.hugePageKB)
        counters.type(.hugetlb).available.store(free > 0 || hugeSweep.held != nil ? 1 : 0, ordering: .relaxed)
    }

    // MARK: arena

    private func seed(pass: UInt64) -> (seed: UInt64, invert: Bool) {
        (mix64(nonce &+ pass &* 0x9e37_79b9_7f4a_7c15), pass & 1 == 1)
    }

    private func ensureArena() -> ScanRegion? {
        if let arena { return arena }
        let bytes = max(basePageSize, settings.arenaBytes / basePageSize * basePageSize)
        let region: ScanRegion
        do {
            let binder = self.binder
            let id = node.id
            region = try ScanRegion(bytes: bytes, name: "mcescan-arena-node\(id)", lock: true) { base, length in
                try binder.bindMemory(base, bytes: length, toNode: id)
            }
        } catch {
            log(.error, "cannot allocate the arena", ["node": "\(node.id)", "bytes": "\(bytes)", "err": "\(error.message)"])
            return nil
        }
        if !region.isLocked && !loggedLock {
            loggedLock = true
            log(.warning, "arena runs unlocked (mlock refused; raise the memlock limit or grant CAP_IPC_LOCK)",
                ["node": "\(node.id)", "err": region.lockError ?? "unknown"])
        }
        arenaPass = 0
        cursorPage = 0
        let first = seed(pass: 0)
        region.fill(pages: 0..<region.pageCount, seed: first.seed, invert: first.invert)
        arena = region
        shared.withLock { $0.region = region; $0.cursorPage = 0; $0.injectedWords = []; $0.injectedPages = [:] }
        setRegion(.arena, bytes: UInt64(region.byteCount), locked: UInt64(region.lockedBytes))
        checkPlacement(.arena, base: region.base, pages: region.pageCount, pageSize: region.pageSize)
        return region
    }

    private func dropArena() {
        guard arena != nil else { return }
        arenaFrames = []
        arenaFramesKey = nil
        shared.withLock { $0.region = nil; $0.injectedWords = []; $0.injectedPages = [:] }
        arena = nil
        setRegion(.arena, bytes: 0, locked: 0)
    }

    /// The arena's frames as they are now, when the cache still matches the mapping: read before a
    /// verify or a retirement, they give the physical address of a page that faults or is poisoned
    /// (after the fault pagemap no longer shows its frame).
    private func arenaFramesNow(_ region: ScanRegion) -> [UInt64]? {
        guard let key = arenaFramesKey, key.generation == region.mappingGeneration,
              arenaFrames.count == region.pageCount else { return nil }
        return arenaFrames
    }

    /// Physical address of `address` in page `page` of a region whose frames (one per `pageSize`
    /// page, 0 unknown) were read before; nil when unknown.
    private func physicalAddress(frames: [UInt64]?, page: Int, pageSize: Int, address: UInt) -> UInt64? {
        guard let frames, page >= 0, page < frames.count, frames[page] != 0 else { return nil }
        return frames[page] * UInt64(basePageSize) + UInt64(address % UInt(pageSize))
    }

    private func scanArena(_ region: ScanRegion, pages: Range<Int>) {
        let current = seed(pass: arenaPass)
        let next = seed(pass: arenaPass + 1)
        let framesBefore = arenaFramesNow(region)
        let r = region.verify(pages: pages, seed: current.seed, invert: current.invert, refill: next)
        let tally = ScanTally(r, pageBytes: region.pageSize)
        // A page that mismatched gets the next pattern written in full, so the next pass checks
        // retention again, not this pass's damage (verify already replaced faulting pages and
        // filled them with the next pattern).
        let faulted = Set(r.faults.map(\.pageIndex))
        for page in Set(r.mismatches.map { $0.offset / region.pageSize }) where page < region.pageCount && !faulted.contains(page) {
            region.fill(pages: page..<(page + 1), seed: next.seed, invert: next.invert)
        }
        account(.arena, tally, base: UInt(bitPattern: region.base), replaced: true) { fault in
            self.physicalAddress(frames: framesBefore, page: fault.pageIndex, pageSize: region.pageSize, address: fault.address)
        }
        if let pagemap, pagemap.isUsable {
            let key = (generation: region.mappingGeneration, pass: arenaPass / Self.arenaFramesRefreshPasses)
            if arenaFramesKey.map({ $0 != key }) ?? true || arenaFrames.count != region.pageCount {
                arenaFrames = pagemap.frames(region.base, count: region.pageCount)
                arenaFramesKey = key
                arenaMarked = (coverage.epoch, 0)
            }
            if arenaMarked.epoch != coverage.epoch { arenaMarked = (coverage.epoch, 0) }
            if pages.lowerBound <= arenaMarked.pages, pages.upperBound > arenaMarked.pages {
                coverage.mark(arenaFrames[arenaMarked.pages..<pages.upperBound])
                arenaMarked.pages = pages.upperBound
            } else if pages.lowerBound > arenaMarked.pages {
                coverage.mark(arenaFrames[pages])
            }
        }
    }

    // MARK: sweeps

    enum SweepVisit { case took(pages: Int), backoff, nothing }

    private func visitSweep(_ sweep: FreeSweep, budgetPages: Int) -> SweepVisit {
        let type = sweep.type
        var verifiedPages = 0
        if let (tally, chunk) = sweep.verifyAndRelease() {
            let held = sweepFrames.removeValue(forKey: type.bit)
            let frames = held?.base == chunk.base ? held?.frames : nil
            account(type, tally, base: UInt(bitPattern: chunk.base), replaced: false) { fault in
                self.physicalAddress(frames: frames, page: fault.pageIndex, pageSize: chunk.pageSize, address: fault.address)
            }
            verifiedPages = tally.pages * chunk.pageSize / basePageSize
            if var frames {
                for f in tally.faults where f.pageIndex < frames.count { frames[f.pageIndex] = 0 }   // not verified
                coverage.mark(frames, framesPerPage: UInt64(chunk.pageSize / basePageSize))
            }
        }
        let plan = sweep.plan(budgetBytes: budgetPages * basePageSize)
        if type == .hugetlb {
            counters.type(.hugetlb).available.store(plan.backoff == .unavailable ? 0 : 1, ordering: .relaxed)
        }
        if let reason = plan.backoff {
            counters.countBackoff(reason)
            setRegion(type, bytes: 0, locked: 0)
            return .backoff
        }
        guard plan.bytes > 0 else {
            setRegion(type, bytes: 0, locked: 0)
            return verifiedPages > 0 ? .took(pages: verifiedPages) : .nothing
        }
        sweepSerial &+= 1
        let s = seed(pass: sweepSerial &* 0x1_0000_0001 &+ UInt64(type.bit))
        do {
            let chunk = try sweep.take(bytes: plan.bytes, seed: s.seed, invert: s.invert)
            if let pagemap, pagemap.isUsable {
                sweepFrames[type.bit] = (chunk.base, pagemap.frames(chunk.base, count: chunk.pageCount, stride: chunk.pageSize))
            }
            setRegion(type, bytes: UInt64(chunk.bytes), locked: 0)
            checkPlacement(type, base: chunk.base, pages: chunk.pageCount, pageSize: chunk.pageSize)
            return .took(pages: max(verifiedPages, chunk.bytes / basePageSize))
        } catch {
            counters.countBackoff(error.reason)
            if type == .hugetlb && error.reason == .unavailable {
                counters.type(.hugetlb).available.store(0, ordering: .relaxed)
            }
            log(.debug, "sweep backed off", ["node": "\(node.id)", "memory_type": type.name, "err": error.message])
            setRegion(type, bytes: 0, locked: 0)
            return .backoff
        }
    }

    // MARK: accounting

    /// Records the events of one verify (fsync'd), then counts it.
    /// `knownAddress` gives the physical address of a faulting page from frames read before it
    /// faulted (nil when unknown); injected faults carry the address looked up at injection.
    private func account(_ type: MemoryType, _ tally: ScanTally, base: UInt, replaced: Bool,
                         knownAddress: (ScanTally.Fault) -> UInt64? = { _ in nil }) {
        let now = wallNow()
        var found: [ScanEvent] = []
        var injectedHits = (words: Set<Int>(), pages: [Int: UInt64?]())
        if type == .arena && (!tally.mismatches.isEmpty || !tally.faults.isEmpty) {
            injectedHits = shared.withLock { s in
                var w = Set<Int>(), p = [Int: UInt64?]()
                for m in tally.mismatches where s.injectedWords.remove(Int(m.offset)) != nil { w.insert(Int(m.offset)) }
                for f in tally.faults { if let phys = s.injectedPages.removeValue(forKey: f.pageIndex) { p[f.pageIndex] = phys } }
                return (w, p)
            }
        }
        for m in tally.mismatches {
            let injected = injectedHits.words.contains(Int(m.offset))
            found.append(ScanEvent(time: now, node: node.id, memoryType: type, kind: injected ? .injected : .corruption,
                                   offset: m.offset, physAddr: pagemap?.physicalAddress(of: base + UInt(m.offset)),
                                   expected: m.expected, actual: m.actual, bits: (m.expected ^ m.actual).nonzeroBitCount))
        }
        for f in tally.faults {
            let code = SigbusCode(siCode: f.siCode)
            let injected = injectedHits.pages[f.pageIndex]
            let kind: EventKind = injected != nil ? .injected : (code.isPoison ? .poison : .lostBacking)
            // A page found faulting has no frame left in pagemap: injected ones were looked up at
            // injection, the others come from the frames read before the verify.
            found.append(ScanEvent(time: now, node: node.id, memoryType: type, kind: kind,
                                   offset: UInt64(f.pageIndex * tally.pageBytes),
                                   physAddr: injected != nil ? injected! : knownAddress(f)))
        }
        events.append(found)   // durable before it is counted

        let c = counters.type(type)
        c.scannedPages.add(UInt64(tally.pages), ordering: .relaxed)
        c.scannedBytes.add(UInt64(tally.pages * tally.pageBytes), ordering: .relaxed)
        if tally.corrupted > 0 {
            c.corruptedWords.add(tally.corrupted, ordering: .relaxed)
            c.flips0to1.add(tally.flips0to1, ordering: .relaxed)
            c.flips1to0.add(tally.flips1to0, ordering: .relaxed)
        }
        for f in tally.faults {
            let code = SigbusCode(siCode: f.siCode)
            counters.countSigbus(code)
            if code.isPoison || injectedHits.pages[f.pageIndex] != nil {
                c.poisonedPages.add(1, ordering: .relaxed)
            }
            if replaced { c.replacedPages.add(1, ordering: .relaxed) }
        }
    }

    /// Poison notices that arrived outside a scan (early kill, BUS_MCEERR_AO): retire those pages
    /// now. Arena pages are replaced and refilled with the pattern their next verify expects;
    /// sweep chunk pages are skipped at their verify and released with the chunk.
    private func claimAsyncPoison() {
        var found: [ScanEvent] = []
        var counts: [(MemoryType, Bool)] = []
        if let region = arena {
            let current = seed(pass: arenaPass), next = seed(pass: arenaPass + 1)
            let framesBefore = arenaFramesNow(region)
            for fault in region.retireAsyncPoison(seed: current.seed, invert: current.invert) {
                // Pages before the cursor already hold the next pass's pattern.
                if fault.pageIndex < cursorPage {
                    region.fill(pages: fault.pageIndex..<(fault.pageIndex + 1), seed: next.seed, invert: next.invert)
                }
                let injected = shared.withLock { $0.injectedPages.removeValue(forKey: fault.pageIndex) }
                found.append(ScanEvent(time: wallNow(), node: node.id, memoryType: .arena, kind: injected != nil ? .injected : .poison,
                                       offset: UInt64(fault.pageIndex * region.pageSize),
                                       physAddr: injected != nil ? injected! : physicalAddress(frames: framesBefore, page: fault.pageIndex,
                                                                                                pageSize: region.pageSize, address: fault.address)))
                counts.append((.arena, true))
            }
        }
        for (type, sweep) in [(MemoryType.free, freeSweep), (.hugetlb, hugeSweep)] {
            guard let chunk = sweep.held else { continue }
            let held = sweepFrames[type.bit]
            let frames = held?.base == chunk.base ? held?.frames : nil
            for page in chunk.takeAsyncPoison() {
                found.append(ScanEvent(time: wallNow(), node: node.id, memoryType: type, kind: .poison,
                                       offset: UInt64(page * chunk.pageSize),
                                       physAddr: physicalAddress(frames: frames, page: page, pageSize: chunk.pageSize,
                                                                 address: UInt(bitPattern: chunk.base) + UInt(page * chunk.pageSize))))
                counts.append((type, false))
            }
        }
        guard !found.isEmpty else { return }
        events.append(found)   // durable before counted
        for (type, replaced) in counts {
            counters.countSigbus(.mceerrAO)
            counters.type(type).poisonedPages.add(1, ordering: .relaxed)
            if replaced { counters.type(type).replacedPages.add(1, ordering: .relaxed) }
        }
    }

    // MARK: gauges and placement

    private func setRegion(_ type: MemoryType, bytes: UInt64, locked: UInt64) {
        let c = counters.type(type)
        c.regionBytes.store(bytes, ordering: .relaxed)
        c.regionLockedBytes.store(locked, ordering: .relaxed)
        if bytes == 0 { c.misplacedBytes.store(0, ordering: .relaxed) }
    }

    /// Pages sampled per region by the placement check.
    static let placementSamples = 64

    /// Asks the binder where the pages landed (`placementSamples` pages spread evenly over the
    /// region, scaled up); a mismatch is logged and exported as `region_misplaced_bytes`, never ignored.
    private func checkPlacement(_ type: MemoryType, base: UnsafeMutableRawPointer, pages: Int, pageSize: Int) {
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

    // MARK: fault injection (control API thread)

    /// Injects `count` faults into the arena at the pages the worker scans next.
    func inject(_ kind: InjectedKind, count: Int, mechanism: InjectMechanism) throws(InjectError) -> [UInt64] {
        guard (1...64).contains(count) else { throw InjectError(.invalidArgument, "count \(count) is out of range (1-64)") }
        return try shared.withLock { s throws(InjectError) -> [UInt64] in
            guard let region = s.region else {
                throw InjectError(.noArena, "node \(node.id) has no arena (type arena disabled, or the worker has not woken yet)")
            }
            var offsets: [UInt64] = []
            let wordsPerPage = region.pageSize / 8
            for i in 0..<count {
                let page = (s.cursorPage + i) % region.pageCount
                do {
                    switch kind {
                    case .bitflip:
                        let word = page * wordsPerPage + Int(mix64(UInt64(i) &+ nonce) % UInt64(wordsPerPage))
                        let bit = Int(mix64(UInt64(word)) % 64)
                        try region.injectBitFlip(wordIndex: word, mask: 1 << UInt64(bit))
                        s.injectedWords.insert(word * 8)
                        offsets.append(UInt64(word * 8))
                    case .poison:
                        // The frame must be read now: after MADV_HWPOISON the pagemap entry is a
                        // hwpoison swap entry, and after truncation there is no frame at all.
                        let phys = pagemap?.physicalAddress(of: UInt(bitPattern: region.base) + UInt(page * region.pageSize))
                        if mechanism == .kernel { try region.injectHardwarePoison(page: page) } else { try region.injectLostBacking(page: page) }
                        s.injectedPages[page] = phys
                        offsets.append(UInt64(page * region.pageSize))
                    }
                } catch {
                    if offsets.isEmpty { throw InjectError(.unsupported, "\(error)") }
                    break
                }
            }
            counters.countInjected(kind, UInt64(offsets.count))
            return offsets
        }
    }
}

// MARK: helpers

/// SplitMix64 finaliser: seeds that differ in one bit give unrelated patterns.
@inline(__always) func mix64(_ v: UInt64) -> UInt64 {
    var z = v &+ 0x9e37_79b9_7f4a_7c15
    z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
    z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
    return z ^ (z >> 31)
}

func monotonicNow() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func wallNow() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// CPU time of the calling thread, nanoseconds.
func threadCPUNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}
