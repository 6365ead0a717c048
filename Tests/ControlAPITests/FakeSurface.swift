import Logging
import Synchronization
import Testing
@testable import MetricsExporter
import ScanWorkers
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// A control surface with real NodeControls and scripted status/events.
final class FakeSurface: ControlSurface {
    let controls: [Int: NodeControl]
    let injected = Mutex<[InjectRequest]>([])
    let injectError: ControlError?
    /// The events kept: ids `eventIDs`.
    let eventIDs: [Int]

    init(nodes: [Int] = [0, 1], injectError: ControlError? = nil, eventIDs: [Int] = Array(1...5)) {
        controls = Dictionary(uniqueKeysWithValues: nodes.map { ($0, NodeControl(node: $0, initial: try! ScanConfig())) })
        self.injectError = injectError
        self.eventIDs = eventIDs
    }

    var nodes: [Int] { controls.keys.sorted() }
    func control(node: Int) -> NodeControl? { controls[node] }
    func status(node: Int) -> NodeStatus? {
        guard controls[node] != nil else { return nil }
        return NodeStatus(state: controls[node]!.snapshot().isParked ? "parked" : "running",
                          stat: [("pages_scanned", 100 + UInt64(node)), ("full_scans", 3), ("errors_found", 0)],
                          lastFullScan: 1_795_000_000)
    }
    func events(after: UInt64, limit: Int) -> [ScanEvent] {
        let all = eventIDs.map { ScanEvent(id: UInt64($0), time: 1_795_000_000 + Double($0), node: 0, memoryType: .arena,
                                          kind: .corruption, offset: UInt64($0 * 64), expected: 0xff, actual: 0xfe, bits: 1) }
        return Array(all.filter { $0.id > after }.prefix(limit))
    }
    func inject(_ request: InjectRequest) throws(ControlError) -> InjectOutcome {
        if let injectError { throw injectError }
        injected.withLock { $0.append(request) }
        return InjectOutcome(offsets: (0..<request.count).map { UInt64($0 * 4096) })
    }

    var configs: [ScanConfig] { nodes.map { controls[$0]!.snapshot() } }
}
