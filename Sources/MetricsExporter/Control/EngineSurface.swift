import ScanWorkers

/// The scan engine as the control API sees it.
public struct EngineSurface: ControlSurface {
    let engine: ScanEngine

    public init(engine: ScanEngine) { self.engine = engine }

    public var nodes: [Int] { engine.nodes.map(\.node.id) }

    public func control(node: Int) -> NodeControl? { engine.node(node)?.control }

    public func status(node: Int) -> NodeStatus? {
        guard let snap = engine.node(node)?.snapshot() else { return nil }
        let s = snap.stat
        return NodeStatus(
            state: snap.state.name,
            stat: [("pages_scanned", s.pagesScanned), ("bytes_scanned", s.bytesScanned), ("full_scans", s.fullScans),
                   ("wakeups", s.wakeups), ("corrupted_words", s.corruptedWords), ("poisoned_pages", s.poisonedPages),
                   ("replaced_pages", s.replacedPages), ("backoffs", s.backoffs)],
            lastFullScan: s.lastFullScan, failure: snap.failure)
    }

    public func events(after: UInt64, limit: Int) -> [ScanEvent] {
        engine.events.events(after: after, limit: limit)
    }

    public func inject(_ request: InjectRequest) throws(ControlError) -> InjectOutcome {
        guard let handle = engine.node(request.node) else {
            throw ControlError(404, "unknown_node", "node \(request.node) is not scanned")
        }
        let kind: InjectedKind = request.kind == .bitflip ? .bitflip : .poison
        let mechanism: InjectMechanism = request.mechanism == .kernel ? .kernel : .synthetic
        do throws(InjectError) {
            return InjectOutcome(offsets: try handle.inject(kind, count: request.count, mechanism: mechanism))
        } catch {
            switch error.code {
            case .noArena: throw ControlError(409, "no_arena", error.message)
            case .arenaFull: throw ControlError(409, "arena_full", error.message)
            case .unsupported: throw ControlError(501, "unsupported", error.message)
            case .invalidArgument: throw ControlError(400, "out_of_range", error.message, field: "count")
            }
        }
    }
}
