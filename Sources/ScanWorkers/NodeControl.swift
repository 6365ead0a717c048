import HostFS
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A memory type the scanner can sweep; its raw value is its bit in the `type` knob.
public enum MemoryType: Int, Sendable, CaseIterable, Comparable {
    /// bit 0: the node's pinned arena.
    case arena = 1
    /// bit 1: free memory of the node, a chunk at a time.
    case free = 2
    /// bit 2: free huge pages of the node's hugetlb pool.
    case hugetlb = 4

    /// The `memory_type` label and the name accepted by `--scan.type`.
    public var name: String {
        switch self {
        case .arena: "arena"
        case .free: "free"
        case .hugetlb: "hugetlb"
        }
    }

    /// The bit number (0, 1, 2).
    public var bit: Int { rawValue.trailingZeroBitCount }

    /// The type with this name, or nil.
    public init?(name: String) {
        guard let t = MemoryType.allCases.first(where: { $0.name == name }) else { return nil }
        self = t
    }

    public static func < (a: MemoryType, b: MemoryType) -> Bool { a.rawValue < b.rawValue }
}

/// Why a knob value was refused. `field` names the knob (`pages_to_scan`, `scan_sleep_millisecs`,
/// `type`) so the control API can put it in its error body.
public struct KnobError: Error, Sendable, Equatable, CustomStringConvertible {
    public var field: String
    public var message: String
    public init(field: String, _ message: String) {
        self.field = field
        self.message = message
    }
    public var description: String { "\(field): \(message)" }
}

/// The three read-write knobs of one node (the mcescan sysfs interface proposed on linux-mm).
public struct ScanConfig: Sendable, Equatable {
    /// Accepted range of `pages_to_scan` (0 parks the worker).
    public static let pagesToScanRange: ClosedRange<Int> = 0...4_194_304
    /// Accepted range of `scan_sleep_millisecs` (24 h at most).
    public static let sleepMillisRange: ClosedRange<Int> = 0...86_400_000
    /// Accepted range of `type` (bitmask of `MemoryType`; 0 parks the worker).
    public static let typeRange: ClosedRange<Int> = 0...7

    /// Default `pages_to_scan` (`--scan.pages-to-scan`).
    public static let defaultPagesToScan = 4096
    /// Default `scan_sleep_millisecs` (`--scan.sleep-millisecs`).
    public static let defaultSleepMillis = 10_000
    /// Default `type` (`--scan.type`): arena and free.
    public static let defaultType = MemoryType.arena.rawValue | MemoryType.free.rawValue

    /// Pages (of the base page size) scanned per wake, over all enabled types.
    public private(set) var pagesToScan: Int
    /// Sleep between wakes, milliseconds.
    public private(set) var sleepMillis: Int
    /// Bitmask of enabled `MemoryType`s.
    public private(set) var type: Int

    /// Validates all three values; throws for the first one out of range, naming it.
    public init(pagesToScan: Int = defaultPagesToScan, sleepMillis: Int = defaultSleepMillis, type: Int = defaultType) throws(KnobError) {
        try Self.check(pagesToScan: pagesToScan, sleepMillis: sleepMillis, type: type)
        self.pagesToScan = pagesToScan
        self.sleepMillis = sleepMillis
        self.type = type
    }

    /// The enabled types in bit order.
    public var types: [MemoryType] { MemoryType.allCases.filter { type & $0.rawValue != 0 } }

    /// Whether `type` enables `t`.
    public func enables(_ t: MemoryType) -> Bool { type & t.rawValue != 0 }

    /// A worker with this config does not scan.
    public var isParked: Bool { pagesToScan == 0 || type == 0 }

    /// This config with the given fields replaced, validated as a whole (all-or-nothing).
    public func updating(pagesToScan: Int? = nil, sleepMillis: Int? = nil, type: Int? = nil) throws(KnobError) -> ScanConfig {
        try ScanConfig(pagesToScan: pagesToScan ?? self.pagesToScan, sleepMillis: sleepMillis ?? self.sleepMillis,
                       type: type ?? self.type)
    }

    static func check(pagesToScan: Int, sleepMillis: Int, type: Int) throws(KnobError) {
        guard pagesToScanRange.contains(pagesToScan) else {
            throw KnobError(field: "pages_to_scan", "\(pagesToScan) is out of range (\(pagesToScanRange.lowerBound)-\(pagesToScanRange.upperBound))")
        }
        guard sleepMillisRange.contains(sleepMillis) else {
            throw KnobError(field: "scan_sleep_millisecs", "\(sleepMillis) is out of range (\(sleepMillisRange.lowerBound)-\(sleepMillisRange.upperBound))")
        }
        guard typeRange.contains(type) else {
            throw KnobError(field: "type", "\(type) is out of range (0-7: bitmask of arena=1, free=2, hugetlb=4)")
        }
    }

    /// Parses a `type` given as a number (`3`) or as names (`arena,free`; `none` is 0).
    public static func parseType(_ text: String) throws(KnobError) -> Int {
        let t = text.trimmingCharacters(in: " \t\n")
        if let n = Int(t) {
            guard typeRange.contains(n) else {
                throw KnobError(field: "type", "\(n) is out of range (0-7: bitmask of arena=1, free=2, hugetlb=4)")
            }
            return n
        }
        if t == "none" { return 0 }
        var mask = 0
        for name in t.split(separator: ",", omittingEmptySubsequences: false) {
            guard let type = MemoryType(name: String(name)) else {
                throw KnobError(field: "type", "\"\(name)\" is not a memory type (arena, free, hugetlb, none, or a number 0-7)")
            }
            mask |= type.rawValue
        }
        return mask
    }

    /// The names of the types enabled by `type`, in bit order.
    public static func typeNames(_ type: Int) -> [String] {
        MemoryType.allCases.filter { type & $0.rawValue != 0 }.map(\.name)
    }
}

/// Why a worker's sleep ended.
public enum WakeReason: Sendable, Equatable {
    /// The sleep ran its full `scan_sleep_millisecs`.
    case timeout
    /// A knob changed.
    case knobChange
    /// `trigger()` asked for a scan now.
    case trigger
    /// The engine is stopping.
    case stop
}

/// The control surface of one node's worker: validates, stores and applies the knobs, and wakes
/// the worker at once on a change or a trigger (khugepaged's model: one table of knobs; a write
/// validates, stores and wakes the sleeping worker).
///
/// The worker sleeps on a condition variable (`pthread_cond_timedwait` on CLOCK_MONOTONIC): a
/// sleeping or parked worker uses no CPU, and a change reaches it in microseconds.
public final class NodeControl: @unchecked Sendable {
    /// The node this control belongs to.
    public let node: Int

    // Guarded by `mutex`.
    private var config: ScanConfig
    private var pendingTrigger = false
    private var changed = false
    private var stopping = false
    private var generation: UInt64 = 0
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let cond: UnsafeMutablePointer<pthread_cond_t>
    /// Called with the new config before it is applied, while this node's control mutex is held
    /// (two writers cannot interleave hook and apply; the worker's snapshot and wait block until it
    /// returns, so it must not call back into this `NodeControl`); throwing refuses the change (the control API persists the knobs here, so a 2xx is durable).
    private let willApply: (@Sendable (Int, ScanConfig) throws -> Void)?

    /// - Parameters:
    ///   - node: the node id.
    ///   - initial: the knobs at start (flags, or the state file).
    ///   - willApply: optional hook run under the control mutex before a change is applied; throwing refuses it.
    public init(node: Int, initial: ScanConfig, willApply: (@Sendable (Int, ScanConfig) throws -> Void)? = nil) {
        self.node = node
        self.config = initial
        self.willApply = willApply
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        cond = .allocate(capacity: 1)
        var attr = pthread_condattr_t()
        pthread_condattr_init(&attr)
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
        pthread_cond_init(cond, &attr)
        pthread_condattr_destroy(&attr)
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        cond.deallocate()
        mutex.deallocate()
    }

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// The current knobs.
    public func snapshot() -> ScanConfig { locked { config } }

    /// How many changes were applied since start.
    public var changeCount: UInt64 { locked { generation } }

    /// Changes any of the knobs, all-or-nothing: the values are validated together, and on any
    /// error (or when the `willApply` hook throws) nothing changes. Wakes the worker at once.
    /// Returns the new config.
    @discardableResult
    public func update(pagesToScan: Int? = nil, sleepMillis: Int? = nil, type: Int? = nil) throws -> ScanConfig {
        try replace { current throws(KnobError) in
            try current.updating(pagesToScan: pagesToScan, sleepMillis: sleepMillis, type: type)
        }
    }

    /// Replaces all three knobs (the control API's `PUT`). Wakes the worker at once.
    @discardableResult
    public func set(_ new: ScanConfig) throws -> ScanConfig {
        try replace { _ throws(KnobError) in new }
    }

    private func replace(_ make: (ScanConfig) throws(KnobError) -> ScanConfig) throws -> ScanConfig {
        // Serialised by the mutex so two writers cannot interleave hook and apply.
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        let new = try make(config)
        try willApply?(node, new)
        config = new
        generation &+= 1
        changed = true
        pthread_cond_broadcast(cond)
        return new
    }

    /// Wakes the worker now for one scan (`POST /api/v1/nodes/{n}/scan`), even if it is sleeping.
    /// A parked worker wakes, sees it is still parked, and sleeps again.
    public func trigger() {
        locked {
            pendingTrigger = true
            pthread_cond_broadcast(cond)
        }
    }

    /// Asks the worker to stop; its sleep ends at once.
    func requestStop() {
        locked {
            stopping = true
            pthread_cond_broadcast(cond)
        }
    }

    /// Whether a stop was requested.
    var isStopping: Bool { locked { stopping } }

    /// Sleeps until `millis` have passed (nil: until woken), a knob changes, a trigger arrives or a
    /// stop is requested, whichever is first. A change or trigger that arrived since the last
    /// wait ends the wait at once (none is lost).
    func wait(millis: Int?) -> WakeReason {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        var deadline = timespec()
        if let millis {
            clock_gettime(CLOCK_MONOTONIC, &deadline)
            let ns = Int(deadline.tv_nsec) + (millis % 1000) * 1_000_000
            deadline.tv_sec += millis / 1000 + ns / 1_000_000_000
            deadline.tv_nsec = ns % 1_000_000_000
        }
        while true {
            if stopping { return .stop }
            if changed { changed = false; pendingTrigger = false; return .knobChange }
            if pendingTrigger { pendingTrigger = false; return .trigger }
            if millis != nil {
                if pthread_cond_timedwait(cond, mutex, &deadline) == ETIMEDOUT {
                    if stopping { return .stop }
                    if changed { changed = false; pendingTrigger = false; return .knobChange }
                    if pendingTrigger { pendingTrigger = false; return .trigger }
                    return .timeout
                }
            } else {
                pthread_cond_wait(cond, mutex)
            }
        }
    }
}
