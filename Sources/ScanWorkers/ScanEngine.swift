import HostFS
import Synchronization

/// Read-only statistics of one node (the `stat` of the mcescan interface).
public struct NodeStat: Sendable, Equatable {
    public var fullScans: UInt64
    public var wakeups: UInt64
    public var pagesScanned: UInt64
    public var bytesScanned: UInt64
    public var corruptedWords: UInt64
    public var poisonedPages: UInt64
    public var replacedPages: UInt64
    public var backoffs: UInt64
    /// Wall-clock seconds of the last full scan, nil before the first.
    public var lastFullScan: Double?
}

/// What the control API shows for one node.
public struct NodeSnapshot: Sendable, Equatable {
    public var node: Int
    public var state: WorkerState
    public var config: ScanConfig
    public var stat: NodeStat
    /// Why the worker failed, when it did.
    public var failure: String?
}

/// One node as the rest of the program sees it: its knobs (`control`), its counters, and the
/// operations of the control API (`trigger`, `snapshot`, `inject`).
public final class NodeHandle: Sendable {
    public let node: NUMANode
    /// The CPUs its worker runs on (the nearest node's for a CPU-less node).
    public let cpus: [Int]
    /// The knobs: `control.update(pagesToScan:sleepMillis:type:)` validates all-or-nothing and
    /// wakes the worker at once.
    public let control: NodeControl
    public let counters: NodeCounters
    let worker: ScanWorker

    init(node: NUMANode, cpus: [Int], control: NodeControl, counters: NodeCounters, worker: ScanWorker) {
        self.node = node
        self.cpus = cpus
        self.control = control
        self.counters = counters
        self.worker = worker
    }

    /// Wakes the worker for a scan now (`POST /api/v1/nodes/{n}/scan`).
    public func trigger() { control.trigger() }

    /// Config, state and stat at this instant, read without waiting for the worker.
    public func snapshot() -> NodeSnapshot {
        var stat = NodeStat(fullScans: counters.fullScans.load(ordering: .relaxed),
                            wakeups: counters.wakeups.load(ordering: .relaxed),
                            pagesScanned: 0, bytesScanned: 0, corruptedWords: 0, poisonedPages: 0, replacedPages: 0,
                            backoffs: BackoffReason.allCases.reduce(0) { $0 + counters.backoffCount($1) },
                            lastFullScan: counters.lastFullScan)
        for t in MemoryType.allCases {
            let c = counters.type(t)
            stat.pagesScanned += c.scannedPages.load(ordering: .relaxed)
            stat.bytesScanned += c.scannedBytes.load(ordering: .relaxed)
            stat.corruptedWords += c.corruptedWords.load(ordering: .relaxed)
            stat.poisonedPages += c.poisonedPages.load(ordering: .relaxed)
            stat.replacedPages += c.replacedPages.load(ordering: .relaxed)
        }
        return NodeSnapshot(node: node.id, state: counters.workerState, config: control.snapshot(), stat: stat,
                            failure: counters.failure)
    }

    /// Injects `count` (1-64) faults into the node's arena at the pages scanned next
    /// (`POST /api/v1/nodes/{n}/inject`). `bitflip` flips one bit of a word; `poison` with
    /// `.synthetic` truncates a page of the arena's memfd (a real SIGBUS, no kernel state), with
    /// `.kernel` uses MADV_HWPOISON (a physical page lost until reboot). Counts
    /// `injected_faults_total`; the events of what the scan then finds carry kind `injected`.
    /// Returns the byte offsets injected.
    @discardableResult
    public func inject(_ kind: InjectedKind, count: Int, mechanism: InjectMechanism = .synthetic) throws(InjectError) -> [UInt64] {
        try worker.inject(kind, count: count, mechanism: mechanism)
    }
}

/// Settings of the whole engine (from the command line).
public struct EngineConfiguration: Sendable {
    /// `--scan.nodes`; nil: every online node with memory.
    public var nodes: [Int]?
    /// Initial knobs of every node (the state file may override per node through `initialConfig`).
    public var initial: ScanConfig
    public var worker: WorkerSettings

    public init(nodes: [Int]? = nil, initial: ScanConfig, worker: WorkerSettings) {
        self.nodes = nodes
        self.initial = initial
        self.worker = worker
    }
}

/// Owns every node's worker: builds them from the topology, starts and stops them, and hands out
/// `NodeHandle`s for metrics and the control API.
public final class ScanEngine: Sendable {
    public let topology: Topology
    /// The scanned nodes, ascending id.
    public let nodes: [NodeHandle]
    public let events: EventLog
    /// Whether `/proc/self/pagemap` gives PFNs (coverage and physical addresses).
    public let pagemapUsable: Bool
    /// Why not, when not.
    public let pagemapReason: String?
    private let started = Locked(false)

    /// - Parameters:
    ///   - configuration: flags.
    ///   - topology: the host's (or a fixture's) topology.
    ///   - binder: `LibNUMABinder` in production, `RecordingBinder` in tests.
    ///   - procfs: for `self/pagemap` (coverage, physical addresses).
    ///   - events: the event log (state dir).
    ///   - initialConfig: per-node knobs from the state file, if any.
    ///   - willApply: the control API's persistence hook for knob changes.
    ///   - log: log sink.
    public init(configuration: EngineConfiguration, topology: Topology, binder: any NUMABinder, procfs: ProcFS,
                events: EventLog, initialConfig: (Int) -> ScanConfig? = { _ in nil },
                willApply: (@Sendable (Int, ScanConfig) throws -> Void)? = nil,
                log: @escaping EngineLog = { _, _, _ in }) throws(TopologyError) {
        self.topology = topology
        self.events = events
        let selected = try topology.scanNodes(configuration.nodes)
        let pagemap = PagemapReader(procfs: procfs)
        pagemapUsable = pagemap.isUsable
        pagemapReason = pagemap.reason
        var handles: [NodeHandle] = []
        for node in selected {
            let cpus = topology.workerCPUs(for: node.id)
            if cpus.isEmpty { throw TopologyError(.noNodes, "no CPU to run node \(node.id)'s worker on") }
            let control = NodeControl(node: node.id, initial: initialConfig(node.id) ?? configuration.initial, willApply: willApply)
            let counters = NodeCounters(node: node.id)
            let worker = ScanWorker(node: node, cpus: cpus, control: control, counters: counters, binder: binder,
                                    settings: configuration.worker, events: events, pagemap: pagemap.isUsable ? pagemap : nil,
                                    log: log)
            handles.append(NodeHandle(node: node, cpus: cpus, control: control, counters: counters, worker: worker))
        }
        nodes = handles
    }

    /// The node with this id, if it is scanned.
    public func node(_ id: Int) -> NodeHandle? { nodes.first { $0.node.id == id } }

    /// Starts one worker thread per node. Throws when a thread cannot be created (already
    /// started threads keep running; call `stop`).
    public func start() throws(BindError) {
        try started.withLock { (s: inout Bool) throws(BindError) in
            guard !s else { return }
            s = true
            for h in nodes { try h.worker.start() }
        }
    }

    /// Stops every worker (their sleep ends at once) and waits for them; releases their memory.
    public func stop() {
        for h in nodes { h.control.requestStop() }
        for h in nodes { h.worker.stopAndJoin() }
    }

    /// What keeps the engine from its guarantees while it still scans, one line each, for
    /// `/healthz`: found errors that have not reached `events.jsonl` yet.
    public func degradations() -> [String] {
        let pending = events.pendingBytes
        guard pending > 0 else { return [] }
        return ["events.jsonl: \(pending) bytes of found errors not written yet (\(events.lastWriteError ?? "write failed")); they are retried"]
    }

    /// Failed workers, one line each (`node 1: …`), for `/healthz`.
    public func failedWorkers() -> [String] {
        nodes.compactMap { h in
            h.counters.workerState == .failed ? "node \(h.node.id): \(h.counters.failure ?? "failed")" : nil
        }
    }
}
