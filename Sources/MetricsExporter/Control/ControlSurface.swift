import ScanWorkers

/// What the control API needs from the scan engine. The daemon adapts its `ScanEngine` to this;
/// tests use a double. Kept small so the HTTP layer knows nothing of threads or memory.
public protocol ControlSurface: Sendable {
    /// The scanned nodes, ascending.
    var nodes: [Int] { get }
    /// The knob table of a node (validates, stores, wakes), nil for a node that is not scanned.
    func control(node: Int) -> NodeControl?
    /// The worker's state and its read-only statistics.
    func status(node: Int) -> NodeStatus?
    /// Events with id > `after`, oldest first, at most `limit`.
    func events(after: UInt64, limit: Int) -> [ScanEvent]
    /// Injects faults into a node's memory (only called when fault injection is enabled).
    func inject(_ request: InjectRequest) throws(ControlError) -> InjectOutcome
}

/// A worker's state and statistics, as the API and the sysfs-shaped `stat` file show them.
public struct NodeStatus: Sendable, Equatable {
    /// `running`, `parked`, `backoff` or `failed`.
    public var state: String
    /// Read-only counters in a fixed order (`stat` file lines, JSON keys).
    public var stat: [(name: String, value: UInt64)]
    /// Seconds since the epoch of the last completed full scan, nil when none yet.
    public var lastFullScan: Double?
    /// Why the worker failed, when it did.
    public var failure: String?

    public init(state: String, stat: [(name: String, value: UInt64)], lastFullScan: Double? = nil, failure: String? = nil) {
        self.state = state
        self.stat = stat
        self.lastFullScan = lastFullScan
        self.failure = failure
    }

    public static func == (a: NodeStatus, b: NodeStatus) -> Bool {
        a.state == b.state && a.lastFullScan == b.lastFullScan && a.failure == b.failure &&
            a.stat.map(\.name) == b.stat.map(\.name) && a.stat.map(\.value) == b.stat.map(\.value)
    }

    /// `full_scans` from `stat`, 0 when absent.
    public var fullScans: UInt64 { stat.first { $0.name == "full_scans" }?.value ?? 0 }
}

/// `POST /api/v1/nodes/{n}/inject`.
public struct InjectRequest: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable { case bitflip, poison }
    public enum Mechanism: String, Sendable, CaseIterable { case synthetic, kernel }
    public var node: Int
    public var kind: Kind
    public var count: Int
    public var mechanism: Mechanism

    public init(node: Int, kind: Kind, count: Int, mechanism: Mechanism) {
        self.node = node
        self.kind = kind
        self.count = count
        self.mechanism = mechanism
    }
}

/// What an injection did: the byte offsets in the node's arena that were hit.
public struct InjectOutcome: Sendable, Equatable {
    public var offsets: [UInt64]
    public init(offsets: [UInt64]) { self.offsets = offsets }
}

/// An error the control plane reports with a status and the API's error shape.
public struct ControlError: Error, Sendable, Equatable, CustomStringConvertible {
    public var status: Int
    public var code: String
    public var message: String
    public var field: String?

    public init(_ status: Int, _ code: String, _ message: String, field: String? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.field = field
    }

    public var description: String { "\(status) \(code): \(message)" }

    /// An error that is already a response (another layer's refusal), passed through unchanged.
    init(_ response: HTTPResponse) {
        self.status = response.status
        self.code = ""
        self.message = String(decoding: response.body, as: UTF8.self)
        self.prepared = response
    }

    /// Set when the error came as a finished response.
    var prepared: HTTPResponse? = nil

    var response: HTTPResponse { prepared ?? HTTPResponse.error(status, code: code, message: message, field: field) }

    public static func == (a: ControlError, b: ControlError) -> Bool {
        a.status == b.status && a.code == b.code && a.message == b.message && a.field == b.field
    }
}
