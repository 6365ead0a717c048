import HostFS
import ArgumentParser
import Logging
import MetricsExporter
import ScanWorkers

/// The validated `--scan.*` and `--state.dir` flags, and the engine they describe.
struct ScanFlags {
    var nodes: [Int]?
    var initial: ScanConfig
    var arenaBytes = WorkerSettings.defaultArenaBytes
    var reserveRatio = MemoryGuard.defaultReserveRatio
    var pressureThreshold = MemoryGuard.defaultPressureThreshold
    var coverageWindow = WorkerSettings.defaultCoverageWindow
    var stateDir: String?
    var eventsMaxBytes = EventLog.defaultMaxBytes

    init() {
        initial = (try? ScanConfig()) ?? { fatalError("the default knobs are valid") }()
    }

    /// Validates every flag; each error names the flag and the accepted range.
    init(nodes: String?, pagesToScan: Int, sleepMillis: Int, type: String, arenaBytes: String, freeReserveRatio: Double,
         pressureThreshold: Double, coverageWindow: String, stateDir: String?, eventsMaxBytes: String) throws(ValidationError) {
        func fail(_ flag: String, _ message: String) -> ValidationError { ValidationError("--\(flag): \(message)") }
        if let nodes {
            do { self.nodes = try ScanOptions.parseNodes(nodes) } catch { throw fail("scan.nodes", error.message) }
        }
        let typeMask: Int
        do { typeMask = try ScanConfig.parseType(type) } catch { throw fail("scan.type", error.message) }
        do {
            initial = try ScanConfig(pagesToScan: pagesToScan, sleepMillis: sleepMillis, type: typeMask)
        } catch {
            let flag = ["pages_to_scan": "scan.pages-to-scan", "scan_sleep_millisecs": "scan.sleep-millisecs"][error.field] ?? "scan.type"
            throw fail(flag, error.message)
        }
        do { self.arenaBytes = try ScanOptions.parseBytes(arenaBytes) } catch { throw fail("scan.arena-bytes", error.message) }
        guard freeReserveRatio.isFinite, (0...1).contains(freeReserveRatio) else {
            throw fail("scan.free-reserve-ratio", "\(freeReserveRatio) is out of range (0-1)")
        }
        reserveRatio = freeReserveRatio
        guard pressureThreshold.isFinite, (0...100).contains(pressureThreshold) else {
            throw fail("scan.pressure-threshold", "\(pressureThreshold) is out of range (0-100)")
        }
        self.pressureThreshold = pressureThreshold
        do { self.coverageWindow = try ScanOptions.parseDuration(coverageWindow) } catch { throw fail("scan.coverage-window", error.message) }
        if let stateDir, stateDir.isEmpty { throw fail("state.dir", "must not be empty") }
        self.stateDir = stateDir
        do { self.eventsMaxBytes = try ScanOptions.parseBytes(eventsMaxBytes) } catch { throw fail("state.events-max-bytes", error.message) }
    }

    /// Builds the engine: topology (libnuma for the live /sys, else the sysfs tree), the libnuma
    /// binder (validated against the live host), the state directory and its event log.
    /// The state file's knobs win over the flags for every node they name (a corrupt state file
    /// stops start-up, naming the file).
    func makeEngine(sysfs: SysFS, procfs: ProcFS, logger: Logger) throws -> (engine: ScanEngine, store: StateStore, loaded: [Int: ScanConfig]?) {
        let topology: Topology
        if sysfs.root == "/sys", let live = Topology.fromLibnuma() {
            topology = live
        } else {
            topology = try Topology.read(sysfs: sysfs)
        }
        // Binding is validated against the live host whatever tree --path.sysfs shows.
        let live = Topology.fromLibnuma() ?? topology
        let directory = ScanOptions.stateDirectory(flag: stateDir, environment: ScanOptions.processEnvironment())
        try ScanOptions.prepareStateDirectory(directory)
        let store = StateStore(directory: directory)
        for stale in store.removeStaleTemporaries() {
            logger.warning("removed a temporary state file left by a killed exporter", metadata: ["file": "\(stale)"])
        }
        let loaded = try ControlPlane.loadState(store)
        let eventLogger = logger
        let events = try EventLog(directory: directory, maxBytes: eventsMaxBytes) { problem in
            switch problem {
            case .writeFailed(let reason, let pending):
                eventLogger.error("events.jsonl: cannot write found errors; they are counted and kept in memory, and retried", metadata: [
                    "err": "\(reason)", "pending_bytes": "\(pending)"])
            case .recovered:
                eventLogger.info("events.jsonl: queued events written")
            }
        }
        logger.info("state directory", metadata: ["dir": "\(directory)", "next_event_id": "\(events.nextID)"])
        if events.tornTailBytes > 0 {
            logger.warning("events.jsonl: torn last line (a crash during a write) cut off", metadata: [
                "file": "\(events.path ?? "")", "bytes": "\(events.tornTailBytes)"])
        }
        for skipped in events.skippedLines {
            logger.warning("events.jsonl: damaged line skipped", metadata: [
                "file": "\(events.path ?? "")", "line": "\(skipped.line)", "err": "\(skipped.reason)"])
        }
        let settings = WorkerSettings(arenaBytes: arenaBytes, coverageWindow: coverageWindow,
                                      memoryGuard: MemoryGuard(sysfs: sysfs, procfs: procfs, reserveRatio: reserveRatio,
                                                               pressureThreshold: pressureThreshold))
        let engineLogger = logger
        let engine = try ScanEngine(
            configuration: EngineConfiguration(nodes: nodes, initial: initial, worker: settings),
            topology: topology, binder: LibNUMABinder(topology: live), procfs: procfs, events: events,
            initialConfig: { loaded?[$0] },
            log: { level, message, metadata in
                let md = metadata.mapValues { Logger.MetadataValue.string($0) }
                switch level {
                case .debug: engineLogger.debug("\(message)", metadata: md)
                case .info: engineLogger.info("\(message)", metadata: md)
                case .warning: engineLogger.warning("\(message)", metadata: md)
                case .error: engineLogger.error("\(message)", metadata: md)
                }
            })
        if !engine.pagemapUsable {
            logger.info("coverage_ratio and physical addresses are not available", metadata: ["reason": "\(engine.pagemapReason ?? "unknown")"])
        }
        for h in engine.nodes {
            let c = h.control.snapshot()
            logger.info("scan worker", metadata: [
                "node": "\(h.node.id)", "cpus": "\(h.cpus.map(String.init).joined(separator: ","))",
                "pages_to_scan": "\(c.pagesToScan)", "scan_sleep_millisecs": "\(c.sleepMillis)",
                "type": "\(ScanConfig.typeNames(c.type).joined(separator: ","))",
                "knobs_from": "\(loaded?[h.node.id] != nil ? "state file" : "flags")"])
        }
        return (engine, store, loaded)
    }
}
