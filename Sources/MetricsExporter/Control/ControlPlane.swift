import ScanWorkers
import Synchronization

/// The one place knobs change: validates a change for every node it touches, persists the whole
/// state durably, then applies it (waking the workers). All-or-nothing: one bad field, one
/// unknown node or a failed write changes nothing. Used by the JSON API and the sysfs-shaped view.
public final class ControlPlane: Sendable {
    public let surface: any ControlSurface
    let store: StateStore?
    /// State-file entries of nodes not scanned in this run, written back unchanged.
    let preserved: [Int: PersistedKnobs]
    /// Serializes changes so the state file always matches what was applied last.
    private let writeLock = Mutex<Void>(())

    /// - Parameters:
    ///   - store: nil keeps knobs in memory only (tests of the HTTP layer).
    ///   - loaded: what `loadState` read at start; entries of nodes this run does not scan are
    ///     written back unchanged, so `--scan.nodes` never loses another node's acknowledged knobs.
    public init(surface: any ControlSurface, store: StateStore?, loaded: [Int: ScanConfig]? = nil) {
        self.surface = surface
        self.store = store
        let scanned = Set(surface.nodes)
        self.preserved = (loaded ?? [:]).filter { !scanned.contains($0.key) }.mapValues {
            PersistedKnobs(pagesToScan: $0.pagesToScan, sleepMillis: $0.sleepMillis, type: $0.type)
        }
    }

    /// A requested change of one node's knobs; nil fields stay as they are.
    public struct Change: Sendable, Equatable {
        public var pagesToScan: Int?
        public var sleepMillis: Int?
        public var type: Int?
        public init(pagesToScan: Int? = nil, sleepMillis: Int? = nil, type: Int? = nil) {
            self.pagesToScan = pagesToScan
            self.sleepMillis = sleepMillis
            self.type = type
        }
    }

    /// Applies `change` to `nodes` (every scanned node when nil). Returns the new configs.
    public func apply(_ change: Change, to nodes: [Int]? = nil) throws(ControlError) -> [(node: Int, config: ScanConfig)] {
        try writeLock.withLock { _ throws(ControlError) in
            let targets = nodes ?? surface.nodes
            var planned: [(NodeControl, ScanConfig)] = []
            for node in targets {
                guard let control = surface.control(node: node) else {
                    throw ControlError(404, "unknown_node", "node \(node) is not scanned (scanned nodes: \(surface.nodes.map(String.init).joined(separator: ", ")))")
                }
                do throws(KnobError) {
                    let new = try control.snapshot().updating(pagesToScan: change.pagesToScan, sleepMillis: change.sleepMillis, type: change.type)
                    planned.append((control, new))
                } catch {
                    throw ControlError(400, "out_of_range", error.message, field: error.field)
                }
            }
            if let store {
                var state = preserved
                for node in surface.nodes {
                    if let c = surface.control(node: node)?.snapshot() {
                        state[node] = PersistedKnobs(pagesToScan: c.pagesToScan, sleepMillis: c.sleepMillis, type: c.type)
                    }
                }
                for (control, new) in planned {
                    state[control.node] = PersistedKnobs(pagesToScan: new.pagesToScan, sleepMillis: new.sleepMillis, type: new.type)
                }
                do throws(StateFileError) {
                    try store.save(state)
                } catch {
                    throw ControlError(500, "persist_failed", "the change was not applied: \(error.description)")
                }
            }
            var result: [(node: Int, config: ScanConfig)] = []
            for (control, new) in planned {
                // Already validated above; set cannot refuse it.
                _ = try? control.set(new)
                result.append((control.node, new))
            }
            return result
        }
    }

    /// Reads and validates the state file at start-up: the knobs per node it holds (state wins
    /// over flags), or nil when there is none yet. Any problem throws, naming the file.
    public static func loadState(_ store: StateStore) throws(StateFileError) -> [Int: ScanConfig]? {
        guard let saved = try store.load() else { return nil }
        var configs: [Int: ScanConfig] = [:]
        for (node, k) in saved {
            do throws(KnobError) {
                configs[node] = try ScanConfig(pagesToScan: k.pagesToScan, sleepMillis: k.sleepMillis, type: k.type)
            } catch {
                throw StateFileError(path: store.path, problem: "node \(node): \(error.description)")
            }
        }
        return configs
    }
}
