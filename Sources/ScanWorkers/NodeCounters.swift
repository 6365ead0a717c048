import Synchronization

/// The state a worker reports (`mcescan_worker_state{state}`).
public enum WorkerState: Int, Sendable, CaseIterable {
    /// Scanning or sleeping between wakes.
    case running = 0
    /// `pages_to_scan` or `type` is 0.
    case parked = 1
    /// The last wake backed off every enabled type (pressure, reserve or nothing available).
    case backoff = 2
    /// The worker stopped on an error (see `NodeCounters.failure`).
    case failed = 3

    /// The `state` label.
    public var name: String {
        switch self {
        case .running: "running"
        case .parked: "parked"
        case .backoff: "backoff"
        case .failed: "failed"
        }
    }
}

/// The `code` label of `mcescan_sigbus_total`.
public enum SigbusCode: Int, Sendable, CaseIterable {
    case mceerrAR = 0, mceerrAO, adrerr, objerr, other

    /// From `siginfo.si_code` of a SIGBUS: the one place a code is classified.
    public init(siCode: Int32) {
        switch siCode {
        case SigbusSiCode.mceerrAR: self = .mceerrAR
        case SigbusSiCode.mceerrAO: self = .mceerrAO
        case SigbusSiCode.adrerr: self = .adrerr
        case SigbusSiCode.objerr: self = .objerr
        default: self = .other
        }
    }

    /// The kernel marked the frame poisoned (`BUS_MCEERR_AR`/`AO`); any other code means the
    /// mapping lost its backing.
    public var isPoison: Bool { self == .mceerrAR || self == .mceerrAO }

    public var name: String {
        switch self {
        case .mceerrAR: "mceerr_ar"
        case .mceerrAO: "mceerr_ao"
        case .adrerr: "adrerr"
        case .objerr: "objerr"
        case .other: "other"
        }
    }
}

/// The `reason` label of `mcescan_scan_backoffs_total`.
public enum BackoffReason: Int, Sendable, CaseIterable {
    /// PSI memory `some avg10` above `--scan.pressure-threshold`.
    case pressure = 0
    /// Taking the chunk would leave MemFree below `--scan.free-reserve-ratio` of MemTotal.
    case reserve
    /// Nothing to take (empty hugetlb pool, allocation refused).
    case unavailable

    public var name: String {
        switch self {
        case .pressure: "pressure"
        case .reserve: "reserve"
        case .unavailable: "unavailable"
        }
    }
}

/// The `kind` label of `mcescan_injected_faults_total` (fault injection through the control API).
public enum InjectedKind: Int, Sendable, CaseIterable {
    case bitflip = 0, poison

    public var name: String {
        switch self {
        case .bitflip: "bitflip"
        case .poison: "poison"
        }
    }
}

/// Upper bounds of the `mcescan_wake_duration_seconds` histogram (1 ms to 10 s).
public let wakeDurationBuckets: [Double] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

/// Counters of one memory type of one node.
public final class TypeCounters: Sendable {
    public let scannedPages = Atomic<UInt64>(0)
    public let scannedBytes = Atomic<UInt64>(0)
    public let corruptedWords = Atomic<UInt64>(0)
    public let flips0to1 = Atomic<UInt64>(0)
    public let flips1to0 = Atomic<UInt64>(0)
    public let poisonedPages = Atomic<UInt64>(0)
    public let replacedPages = Atomic<UInt64>(0)
    /// Bytes the type currently holds (arena size, free chunk, huge pages held).
    public let regionBytes = Atomic<UInt64>(0)
    /// Of those, bytes locked in RAM (mlock).
    public let regionLockedBytes = Atomic<UInt64>(0)
    /// Of those, bytes the placement check found on another node than the worker's.
    public let misplacedBytes = Atomic<UInt64>(0)
    /// 1 when the type can be scanned on this node, 0 when not (empty hugetlb pool).
    public let available = Atomic<UInt64>(1)
    init() {}
}

/// Lock-free counters of one node's worker, written by the worker once per chunk (relaxed
/// atomics) and read by scrapes without waiting for the worker.
///
/// Each node's counters are one heap object padded on both sides, so two nodes' counters never
/// share a cache line.
public final class NodeCounters: Sendable {
    private let padHead = (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))
    public let node: Int
    /// Per memory type, indexed by `MemoryType.bit`.
    public let types: [TypeCounters]
    public let fullScans = Atomic<UInt64>(0)
    public let wakeups = Atomic<UInt64>(0)
    /// CPU time of the worker thread, nanoseconds (`CLOCK_THREAD_CPUTIME_ID`).
    public let cpuNanos = Atomic<UInt64>(0)
    /// `Double.bitPattern` of the wall-clock time of the last full scan (0: none yet).
    public let lastFullScanBits = Atomic<UInt64>(0)
    let sigbus = InlineArray<5, Atomic<UInt64>> { _ in Atomic(0) }
    let backoffs = InlineArray<3, Atomic<UInt64>> { _ in Atomic(0) }
    let injected = InlineArray<2, Atomic<UInt64>> { _ in Atomic(0) }
    public let state = Atomic<Int>(WorkerState.running.rawValue)
    /// Wake duration histogram: non-cumulative bucket counts (one more than the bounds, for +Inf),
    /// total count, and sum in nanoseconds.
    let wakeBuckets = InlineArray<14, Atomic<UInt64>> { _ in Atomic(0) }
    let wakeCount = Atomic<UInt64>(0)
    let wakeSumNanos = Atomic<UInt64>(0)
    /// Frames distinct in the coverage window, and the node's pages; `coverageKnown` 0 when pagemap gives no PFNs.
    let coverageFrames = Atomic<UInt64>(0)
    let coverageTotal = Atomic<UInt64>(0)
    let coverageKnown = Atomic<Int>(0)
    /// Node MemTotal at the last wake, bytes.
    public let nodeMemoryBytes = Atomic<UInt64>(0)
    /// Corrupted words counted without an event of their own: one verify records the first
    /// `ScanRegion.maxMismatchesPerChunk` mismatches in detail (a storm must not flood the log).
    public let eventsDroppedAtCap = Atomic<UInt64>(0)
    private let failureText = Locked<String?>(nil)
    private let padTail = (UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0), UInt64(0))

    public init(node: Int) {
        self.node = node
        types = MemoryType.allCases.map { _ in TypeCounters() }
        precondition(sigbus.count == SigbusCode.allCases.count && backoffs.count == BackoffReason.allCases.count
                     && injected.count == InjectedKind.allCases.count && wakeBuckets.count == wakeDurationBuckets.count + 1)
        _ = padHead
        _ = padTail
    }

    /// The counters of one memory type.
    public func type(_ t: MemoryType) -> TypeCounters { types[t.bit] }

    /// Counts one SIGBUS taken while scanning.
    public func countSigbus(_ code: SigbusCode) { sigbus[code.rawValue].add(1, ordering: .relaxed) }
    /// SIGBUS taken with this code so far.
    public func sigbusCount(_ code: SigbusCode) -> UInt64 { sigbus[code.rawValue].load(ordering: .relaxed) }

    /// Counts one back-off of a sweep.
    public func countBackoff(_ reason: BackoffReason) { backoffs[reason.rawValue].add(1, ordering: .relaxed) }
    /// Back-offs with this reason so far.
    public func backoffCount(_ reason: BackoffReason) -> UInt64 { backoffs[reason.rawValue].load(ordering: .relaxed) }

    /// Counts an injected fault (the control API's `inject`).
    public func countInjected(_ kind: InjectedKind, _ n: UInt64 = 1) { injected[kind.rawValue].add(n, ordering: .relaxed) }
    /// Injected faults of this kind so far.
    public func injectedCount(_ kind: InjectedKind) -> UInt64 { injected[kind.rawValue].load(ordering: .relaxed) }

    /// The worker's state.
    public var workerState: WorkerState { WorkerState(rawValue: state.load(ordering: .relaxed)) ?? .failed }
    func setState(_ s: WorkerState) { state.store(s.rawValue, ordering: .relaxed) }

    /// Why the worker failed, when it did.
    public var failure: String? { failureText.withLock { $0 } }
    func fail(_ message: String) {
        failureText.withLock { $0 = message }
        setState(.failed)
    }

    /// Wall-clock seconds of the last full scan, nil before the first.
    public var lastFullScan: Double? {
        let bits = lastFullScanBits.load(ordering: .relaxed)
        return bits == 0 ? nil : Double(bitPattern: bits)
    }

    /// Records one wake's duration.
    func observeWake(seconds: Double) {
        let index = wakeDurationBuckets.firstIndex { seconds <= $0 } ?? wakeDurationBuckets.count
        // Count first, bucket last (release): a reader that sees the bucket also sees the count.
        wakeCount.add(1, ordering: .relaxed)
        wakeSumNanos.add(UInt64(max(0, seconds) * 1e9), ordering: .relaxed)
        wakeBuckets[index].add(1, ordering: .releasing)
    }

    /// The wake duration histogram: finite bounds, cumulative counts, count and sum (seconds).
    public func wakeHistogram() -> (bounds: [Double], cumulative: [UInt64], count: UInt64, sum: Double) {
        var cumulative: [UInt64] = []
        var running: UInt64 = 0
        for i in 0..<wakeDurationBuckets.count {
            running &+= wakeBuckets[i].load(ordering: .acquiring)
            cumulative.append(running)
        }
        running &+= wakeBuckets[wakeDurationBuckets.count].load(ordering: .acquiring)
        let count = max(wakeCount.load(ordering: .relaxed), running)
        return (wakeDurationBuckets, cumulative, count, Double(wakeSumNanos.load(ordering: .relaxed)) / 1e9)
    }

    /// The share of the node's frames verified in the current coverage window, nil where
    /// `/proc/self/pagemap` gives no PFNs.
    public var coverageRatio: Double? {
        guard coverageKnown.load(ordering: .relaxed) != 0 else { return nil }
        let total = coverageTotal.load(ordering: .relaxed)
        guard total > 0 else { return 0 }
        return min(1, Double(coverageFrames.load(ordering: .relaxed)) / Double(total))
    }
}
