import HostFS
import ArgumentParser
import Logging
import MetricsExporter
import ScanWorkers

#if canImport(Glibc)
import Glibc
#endif

/// `mcescan-exporter [serve]`: the daemon. Start order and shutdown live here and only here (what
/// each signal means: DaemonSignals).
struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the exporter daemon (the default subcommand).",
        discussion: CollectorCatalog.helpText())

    @OptionGroup var common: CommonOptions

    @Option(name: .customLong("web.listen-address"),
            help: ArgumentHelp("Address to listen on, HOST:PORT, [IPV6]:PORT or :PORT (every address); repeatable. Port 0 picks a free port.", valueName: "address"))
    var listenAddresses: [String] = [Defaults.listenAddress]

    @Option(name: .customLong("web.telemetry-path"), help: "Path under which to expose metrics.")
    var telemetryPath: String = Defaults.telemetryPath

    @Option(name: .customLong("web.max-requests"), help: "Maximum number of concurrent connections per listen address (1-65535).")
    var maxRequests: Int = Defaults.maxRequests

    @Option(name: .customLong("web.config.file"),
            help: ArgumentHelp("exporter-toolkit web config (YAML): tls_server_config (cert_file, key_file) for HTTPS, basic_auth_users (bcrypt) for authentication. Unsupported or unknown keys are errors.", valueName: "path"))
    var webConfigFile: String?

    /// `--collector.*` flags, parsed against `CollectorCatalog` (listed in the discussion above),
    /// and anything else ArgumentParser did not recognise, which `validate()` refuses.
    @Argument(parsing: .allUnrecognized, help: ArgumentHelp(visibility: .private))
    var collectorArguments: [String] = []

    @Option(name: .customLong("metrics.detail"), help: ArgumentHelp(MetricsDetail.flagHelp, valueName: "level"))
    var metricsDetail: MetricsDetail = .default

    @Option(name: .customLong("scan.nodes"),
            help: ArgumentHelp("NUMA nodes to scan, e.g. 0,2-3 (default: every online node with memory).", valueName: "list"))
    var scanNodes: String?

    @Option(name: .customLong("scan.pages-to-scan"),
            help: ArgumentHelp("Initial pages (4 KiB) verified per wake on each node (0-4194304; 0 parks the workers).", valueName: "pages"))
    var pagesToScan: Int = ScanConfig.defaultPagesToScan

    @Option(name: .customLong("scan.sleep-millisecs"),
            help: ArgumentHelp("Initial sleep between two wakes (0-86400000 ms).", valueName: "ms"))
    var sleepMillis: Int = ScanConfig.defaultSleepMillis

    @Option(name: .customLong("scan.type"),
            help: ArgumentHelp("Initial memory types: names (arena, free, hugetlb; none) or a bitmask 0-7.", valueName: "types"))
    var scanType: String = Defaults.scanType

    @Option(name: .customLong("scan.arena-bytes"),
            help: ArgumentHelp("Pinned arena per node (4KiB-1TiB; B, KiB, MiB, GiB, TiB suffixes).", valueName: "size"))
    var arenaBytes: String = Defaults.arenaBytes

    @Option(name: .customLong("scan.free-reserve-ratio"),
            help: ArgumentHelp("Never take free memory below this share of the node's memory (0-1).", valueName: "ratio"))
    var freeReserveRatio: Double = MemoryGuard.defaultReserveRatio

    @Option(name: .customLong("scan.pressure-threshold"),
            help: ArgumentHelp("Back off the free and hugetlb sweeps while PSI memory 'some avg10' exceeds this percentage (0-100).", valueName: "percent"))
    var pressureThreshold: Double = MemoryGuard.defaultPressureThreshold

    @Option(name: .customLong("scan.coverage-window"),
            help: ArgumentHelp("Window of the coverage ratio (1m-366d, e.g. 24h, 1h30m).", valueName: "duration"))
    var coverageWindow: String = Defaults.coverageWindow

    @Option(name: .customLong("state.dir"),
            help: ArgumentHelp("Directory for knobs and events.jsonl, created 0700 (default: $STATE_DIRECTORY, else /var/lib/mcescan-exporter if writable, else $XDG_STATE_HOME/mcescan-exporter or ~/.local/state/mcescan-exporter).", valueName: "dir"))
    var stateDir: String?

    @Option(name: .customLong("state.events-max-bytes"),
            help: ArgumentHelp("Size at which events.jsonl is rotated to events.jsonl.1 (one rotated file is kept; 4KiB-1TiB).", valueName: "size"))
    var eventsMaxBytes: String = Defaults.eventsMaxBytes

    @Flag(name: .customLong("control.enable-fault-injection"),
          help: "Enable POST /api/v1/nodes/{n}/inject (fire drills: real bit flips and SIGBUS in the exporter's own arena).")
    var enableFaultInjection = false

    @Flag(name: .customLong("control.enable-kernel-poison"),
          help: "Let inject use MADV_HWPOISON: retires a real physical page until reboot and shows in the kernel's counters. Needs --control.enable-fault-injection.")
    var enableKernelPoison = false

    var scan = ScanFlags()

    var parsedAddresses: [ListenAddress] = []

    var collectorSelection = try! CollectorSelection(parsing: [])

    enum CodingKeys: CodingKey {
        case common, listenAddresses, telemetryPath, maxRequests, webConfigFile, collectorArguments
        case scanNodes, pagesToScan, sleepMillis, scanType, arenaBytes, freeReserveRatio, pressureThreshold, coverageWindow, stateDir, eventsMaxBytes
        case enableFaultInjection, enableKernelPoison, metricsDetail
    }

    mutating func validate() throws {
        if enableKernelPoison && !enableFaultInjection {
            throw ValidationError("--control.enable-kernel-poison: needs --control.enable-fault-injection as well")
        }
        parsedAddresses = []
        for text in listenAddresses {
            do {
                parsedAddresses.append(try ListenAddress(parsing: text))
            } catch {
                throw ValidationError("--web.listen-address: \(error.message)")
            }
        }
        guard telemetryPath.hasPrefix("/"), telemetryPath.count > 1, telemetryPath != "/healthz",
              !telemetryPath.contains("?"), !telemetryPath.contains("#") else {
            throw ValidationError("--web.telemetry-path: \"\(telemetryPath)\" must start with '/' and not be '/' or '/healthz' (e.g. /metrics)")
        }
        guard (1...65535).contains(maxRequests) else {
            throw ValidationError("--web.max-requests: \(maxRequests) is out of range (1-65535)")
        }
        do {
            collectorSelection = try CollectorSelection(parsing: collectorArguments)
        } catch {
            throw ValidationError(error.message)
        }
        scan = try ScanFlags(nodes: scanNodes, pagesToScan: pagesToScan, sleepMillis: sleepMillis, type: scanType,
                             arenaBytes: arenaBytes, freeReserveRatio: freeReserveRatio, pressureThreshold: pressureThreshold,
                             coverageWindow: coverageWindow, stateDir: stateDir, eventsMaxBytes: eventsMaxBytes)
    }

    func run() throws {
        let logger = common.makeLogger()
        var signals = DaemonSignals.block()

        // Before anything starts: a web config that cannot be used stops start-up (exit code 2).
        var webConfig = WebConfig()
        if let webConfigFile {
            do {
                webConfig = try WebConfig.load(path: webConfigFile)
            } catch {
                logger.error("invalid --web.config.file", metadata: ["file": "\(error.file)", "key": "\(error.key ?? "")", "err": "\(error.message)"])
                throw ExitCode(2)
            }
            for warning in webConfig.warnings { logger.warning("web config", metadata: ["file": "\(webConfigFile)", "warning": "\(warning)"]) }
        }

        let procfs = ProcFS(root: common.procfs)
        let sysfs = SysFS(root: common.sysfs)
        let running: [RunningCollector]
        do {
            running = try collectorSelection.build(CollectorContext(sysfs: sysfs, procfs: procfs, logger: logger, detail: metricsDetail))
        } catch {
            logger.error("cannot start the collectors", metadata: ["err": "\(error)"])
            throw ExitCode(2)
        }
        let stopCollectors = { running.forEach { $0.stop() } }
        var collectors = running.map(\.collector)
        // Scan workers start before the HTTP server, so the first scrape already sees them.
        let engine: ScanEngine
        let plane: ControlPlane
        do {
            let made = try scan.makeEngine(sysfs: sysfs, procfs: procfs, logger: logger)
            engine = made.engine
            plane = ControlPlane(surface: EngineSurface(engine: engine), store: made.store, loaded: made.loaded)
            try engine.start()
        } catch {
            logger.error("cannot start the scan workers", metadata: ["err": "\(error)"])
            stopCollectors()
            throw ExitCode(2)
        }
        collectors.append(ScannerCollector(engine: engine, detail: metricsDetail))
        let registry = MetricsRegistry(collectors: collectors, logger: logger)
        let api = ControlAPI(plane: plane, faultInjection: enableFaultInjection, kernelPoison: enableKernelPoison)
        let handler = ExporterHandler(registry: registry, telemetryPath: telemetryPath, extraRoutes: [api],
                                      health: { HealthReport(failed: engine.failedWorkers(), degraded: engine.degradations()) }, surface: plane.surface)

        var config = HTTPServerConfiguration(listenAddresses: parsedAddresses)
        config.maxConnections = maxRequests
        if let tls = webConfig.tls {
            config.tls = .init(keyPEM: tls.keyPEM, certificatePEM: tls.certificatePEM, priorities: tls.priorities)
        }
        logger.info("starting mcescan-exporter", metadata: [
            "version": "\(BuildInfo.version)", "revision": "\(BuildInfo.revision)", "swift": "\(BuildInfo.swiftVersion)"])
        let server: HTTPServer
        do {
            server = try HTTPServer(configuration: config, handler: AccessControl(wrapping: handler, config: webConfig, logger: logger))
        } catch {
            logger.error("cannot start the HTTP server", metadata: ["err": "\(error)"])
            engine.stop()
            stopCollectors()
            throw ExitCode(2)
        }
        for address in server.boundAddresses {
            logger.info("listening", metadata: ["address": "\(address)", "telemetry_path": "\(telemetryPath)"])
        }
        logger.info("access control", metadata: [
            "tls": "\(webConfig.tls == nil ? "off" : "on")", "basic_auth": "\(webConfig.basicAuthUsers.isEmpty ? "off" : "on")",
            "users": "\(webConfig.basicAuthUsers.count)", "web_config_file": "\(webConfigFile ?? "none")",
            "mutations": "\(webConfig.basicAuthUsers.isEmpty ? "loopback only" : "loopback or authenticated")"])

        let received = DaemonSignals.waitForShutdown(&signals, logger: logger)
        logger.info("shutting down", metadata: ["signal": "\(DaemonSignals.name(received))"])
        server.shutdown(gracePeriod: 10)
        engine.stop()
        stopCollectors()
        logger.info("stopped")
    }
}

/// Defaults shown in `--help` and used by the code: one constant each.
enum Defaults {
    static let listenAddress = ":10120"
    static let telemetryPath = "/metrics"
    static let maxRequests = 40
    static let scanType = ScanConfig.typeNames(ScanConfig.defaultType).joined(separator: ",")
    static let arenaBytes = "\(WorkerSettings.defaultArenaBytes >> 20)MiB"
    static let coverageWindow = "\(Int(WorkerSettings.defaultCoverageWindow) / 3600)h"
    static let eventsMaxBytes = "\(EventLog.defaultMaxBytes >> 20)MiB"
}
