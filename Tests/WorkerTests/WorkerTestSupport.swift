import HostFS
import Glibc
@testable import ScanWorkers

/// Root of a fixture tree under Tests/Fixtures/topology/.
func fixture(_ name: String) -> (sysfs: SysFS, procfs: ProcFS) {
    // #filePath is Tests/WorkerTests/WorkerTestSupport.swift; fixtures are in Tests/Fixtures/.
    var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(2)
    let root = parts.joined(separator: "/") + "/Fixtures/topology/" + name
    return (SysFS(root: root + "/sys"), ProcFS(root: root + "/proc"))
}

/// Waits (without asserting anything about time) until `condition` holds or `seconds` pass;
/// returns whether it held. Polls every millisecond: this is the test waiting, not the worker.
func eventually(_ seconds: Double = 20, _ condition: () -> Bool) -> Bool {
    let end = monotonicNow() + seconds
    while monotonicNow() < end {
        if condition() { return true }
        usleep(1000)
    }
    return condition()
}

/// A fresh empty directory under /tmp.
func temporaryDirectory() -> String {
    var template = Array("/tmp/mcescan-worker-test-XXXXXX".utf8CString)
    let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    precondition(p != nil, "mkdtemp failed")
    return String(cString: p!)
}

/// An engine over a fixture topology with a recording binder and a small arena.
func makeEngine(fixture name: String, config: ScanConfig, arenaBytes: Int = 256 << 10, nodes: [Int]? = nil,
                binder: RecordingBinder = RecordingBinder(), events: EventLog? = nil) throws -> (ScanEngine, RecordingBinder) {
    let f = fixture(name)
    let topology = try Topology.read(sysfs: f.sysfs)
    let settings = WorkerSettings(arenaBytes: arenaBytes, memoryGuard: MemoryGuard(sysfs: f.sysfs, procfs: f.procfs))
    let engine = try ScanEngine(configuration: EngineConfiguration(nodes: nodes, initial: config, worker: settings),
                                topology: topology, binder: binder, procfs: f.procfs,
                                events: try events ?? EventLog(directory: nil))
    return (engine, binder)
}

/// One worker on node 0 of the three-node fixture whose arena (`arenaBytes`) is scanned whole on
/// each trigger (64 pages per wake, 60 s sleep), started and past its first wake. Stop it when done.
func startedArenaEngine(arenaBytes: Int, events: EventLog? = nil) throws -> ScanEngine {
    let (engine, _) = try makeEngine(fixture: "three-node", config: try ScanConfig(pagesToScan: 64, sleepMillis: 60_000, type: 1),
                                     arenaBytes: arenaBytes, nodes: [0], events: events)
    try engine.start()
    if !eventually(20, { engine.nodes[0].counters.wakeups.load(ordering: .relaxed) == 1 }) {
        engine.stop()
        throw EngineNotReady()
    }
    return engine
}

/// The engine of `startedArenaEngine` did not finish its first wake in time.
struct EngineNotReady: Error, CustomStringConvertible {
    var description: String { "the worker did not finish its first wake in time" }
}
