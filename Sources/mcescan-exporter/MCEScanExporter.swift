import ArgumentParser
import Logging
import MetricsExporter
import ScanWorkers

#if canImport(Glibc)
import Glibc
#endif

@main
struct MCEScanExporter: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mcescan-exporter",
        abstract: "Scans memory for errors per NUMA node and exports what it finds to Prometheus.",
        version: "\(BuildInfo.version) (revision \(BuildInfo.revision), Swift \(BuildInfo.swiftVersion))",
        subcommands: [Serve.self, Doctor.self],
        defaultSubcommand: Serve.self)

    /// Subcommands whose usage errors exit 2, as docs/operations.md gives for `doctor` (whose
    /// report itself always exits 0); the others keep ArgumentParser's 64 (EX_USAGE).
    static let usageErrorExitsTwo: Set<String> = ["doctor"]

    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            if exitCode(for: error) == .validationFailure,
               let sub = CommandLine.arguments.dropFirst().first, usageErrorExitsTwo.contains(sub) {
                var message = fullMessage(for: error) + "\n"
                message.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
                Glibc.exit(2)
            }
            exit(withError: error)
        }
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {
    public init?(argument: String) {
        switch argument {
        case "debug": self = .debug
        case "info": self = .info
        case "warn": self = .warning
        case "error": self = .error
        default: return nil
        }
    }
    public static var allValueStrings: [String] { ["debug", "info", "warn", "error"] }
    public var defaultValueDescription: String { LineLogHandler.levelName(self) }
}

extension LogFormat: ExpressibleByArgument {}

/// Flags every subcommand shares: logging and the filesystem roots.
struct CommonOptions: ParsableArguments {
    @Option(name: .customLong("log.level"), help: "Only log messages with this severity or above.")
    var logLevel: Logger.Level = .info

    @Option(name: .customLong("log.format"), help: "Output format of log messages.")
    var logFormat: LogFormat = .logfmt

    @Option(name: .customLong("path.sysfs"), help: "sysfs mount point (topology, kernel collectors).")
    var sysfs: String = "/sys"

    @Option(name: .customLong("path.procfs"), help: "procfs mount point (process metrics, pressure, kpageflags).")
    var procfs: String = "/proc"

    func makeLogger() -> Logger {
        let level = logLevel
        let format = logFormat
        LoggingSystem.bootstrap { label in LineLogHandler(label: label, format: format, level: level) }
        return Logger(label: "mcescan-exporter")
    }
}
