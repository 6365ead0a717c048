import CNUMA
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Why a thread or a memory range could not be bound.
public typealias BindError = CodedError<BindFailure>

/// The kinds of `BindError`.
public enum BindFailure: String, Sendable {
    /// The node or CPU does not exist on this host.
    case invalidNode
    /// The kernel refused (errno in the message).
    case failed
}

/// Thread affinity, memory policy and placement queries: the only place that changes where a
/// scan runs or where its memory lives. Production uses `LibNUMABinder`; tests use
/// `RecordingBinder`, which records every request and changes nothing.
public protocol NUMABinder: Sendable {
    /// Pins the calling thread to `cpus` (`sched_setaffinity` for this thread), the CPUs chosen
    /// for the worker of `node`.
    func bindCurrentThread(node: Int, cpus: [Int]) throws(BindError)
    /// Sets a strict memory policy for [address, address+bytes) to `node` (`mbind(MPOL_BIND)`),
    /// before the range is first touched.
    func bindMemory(_ address: UnsafeMutableRawPointer, bytes: Int, toNode node: Int) throws(BindError)
    /// The node that holds each page of a range of resident pages (`move_pages` with no target
    /// nodes), or nil for a page whose node cannot be told. `pageStride` is the page size.
    func nodesOfPages(_ address: UnsafeMutableRawPointer, pageCount: Int, pageStride: Int) -> [Int?]
}

/// The live binder: `sched_setaffinity`, `mbind` and `move_pages` through libnuma.
///
/// libnuma does not fail hard for a missing node (it prints to stderr and leaves memory
/// unbound), so node and CPU ids are validated here against the topology first.
public struct LibNUMABinder: NUMABinder {
    let validNodes: Set<Int>
    let validCPUs: Set<Int>

    /// - Parameter topology: the live topology; only its node and CPU ids are accepted.
    public init(topology: Topology) {
        validNodes = Set(topology.nodes.map(\.id))
        validCPUs = Set(topology.nodes.flatMap(\.cpus))
    }

    public func bindCurrentThread(node: Int, cpus: [Int]) throws(BindError) {
        guard !cpus.isEmpty else { throw BindError(.invalidNode, "no CPU to pin the thread to") }
        for cpu in cpus where !validCPUs.contains(cpu) {
            throw BindError(.invalidNode, "CPU \(cpu) is not online")
        }
        guard let mask = numa_allocate_cpumask() else { throw BindError(.failed, "numa_allocate_cpumask failed") }
        defer { numa_free_cpumask(mask) }
        for cpu in cpus { numa_bitmask_setbit(mask, UInt32(cpu)) }
        // pid 0: the calling thread only (sched_setaffinity is per thread on Linux).
        if numa_sched_setaffinity(0, mask) != 0 {
            throw BindError(.failed, "sched_setaffinity(\(cpus)): \(String(cString: strerror(errno)))")
        }
    }

    public func bindMemory(_ address: UnsafeMutableRawPointer, bytes: Int, toNode node: Int) throws(BindError) {
        guard validNodes.contains(node), node >= 0, node < 64 * 16 else {
            throw BindError(.invalidNode, "node \(node) is not online")
        }
        var mask = [UInt](repeating: 0, count: node / UInt.bitWidth + 1)
        mask[node / UInt.bitWidth] |= 1 << UInt(node % UInt.bitWidth)
        let rc = mask.withUnsafeBufferPointer { buf in
            mbind(address, UInt(bytes), Int32(MPOL_BIND), buf.baseAddress, UInt(buf.count * UInt.bitWidth + 1), 0)
        }
        if rc != 0 { throw BindError(.failed, "mbind(node \(node), \(bytes) bytes): \(String(cString: strerror(errno)))") }
    }

    public func nodesOfPages(_ address: UnsafeMutableRawPointer, pageCount: Int, pageStride: Int) -> [Int?] {
        guard pageCount > 0 else { return [] }
        var pages = [UnsafeMutableRawPointer?](repeating: nil, count: pageCount)
        for i in 0..<pageCount { pages[i] = address + i * pageStride }
        var status = [Int32](repeating: -1, count: pageCount)
        let rc = pages.withUnsafeMutableBufferPointer { p in
            status.withUnsafeMutableBufferPointer { s in
                move_pages(0, UInt(pageCount), p.baseAddress, nil, s.baseAddress, 0)
            }
        }
        if rc != 0 { return [Int?](repeating: nil, count: pageCount) }
        return status.map { $0 >= 0 ? Int($0) : nil }
    }
}

/// A binder for tests: records what was asked, binds nothing, and reports every page on the node
/// it was bound to (or on `misplaceTo` when set, to exercise the placement check).
public final class RecordingBinder: NUMABinder {
    /// One request made to the binder.
    public enum Request: Sendable, Hashable {
        case thread(node: Int, cpus: [Int])
        case memory(node: Int, bytes: Int)
    }

    private struct State {
        var requests: [Request] = []
        var boundNode: [UInt: Int] = [:]
        var refusesMemory = false
    }
    private let state = Locked(State())
    /// When set, every placement query answers this node (a misplaced region).
    public let misplaceTo: Int?

    public init(misplaceTo: Int? = nil) {
        self.misplaceTo = misplaceTo
    }

    /// Every request so far, in order.
    public var requests: [Request] { state.withLock { $0.requests } }

    /// While true, every memory binding fails as a node that is not online would.
    public var refusesMemory: Bool {
        get { state.withLock { $0.refusesMemory } }
        set { state.withLock { $0.refusesMemory = newValue } }
    }

    public func bindCurrentThread(node: Int, cpus: [Int]) throws(BindError) {
        state.withLock { $0.requests.append(.thread(node: node, cpus: cpus)) }
    }

    public func bindMemory(_ address: UnsafeMutableRawPointer, bytes: Int, toNode node: Int) throws(BindError) {
        let refused = state.withLock { s -> Bool in
            s.requests.append(.memory(node: node, bytes: bytes))
            if !s.refusesMemory { s.boundNode[UInt(bitPattern: address)] = node }
            return s.refusesMemory
        }
        if refused { throw BindError(.invalidNode, "node \(node) is not online (test binder)") }
    }

    public func nodesOfPages(_ address: UnsafeMutableRawPointer, pageCount: Int, pageStride: Int) -> [Int?] {
        let node = misplaceTo ?? state.withLock { $0.boundNode[UInt(bitPattern: address)] }
        return [Int?](repeating: node, count: pageCount)
    }
}
