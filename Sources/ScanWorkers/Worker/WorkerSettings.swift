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
