import HostFS
import Logging

/// What a switchable collector needs to be built: the filesystem roots, the logger and the
/// series detail level. Its own options arrive separately, already validated.
public struct CollectorContext: Sendable {
    public var sysfs: SysFS
    public var procfs: ProcFS
    public var logger: Logger
    public var detail: MetricsDetail

    public init(sysfs: SysFS, procfs: ProcFS, logger: Logger, detail: MetricsDetail) {
        self.sysfs = sysfs
        self.procfs = procfs
        self.logger = logger
        self.detail = detail
    }
}

/// A collector that is built, plus what stops its background work at shutdown (nothing for a
/// collector that reads on every scrape).
public struct RunningCollector: Sendable {
    public var collector: any Collector
    public var stop: @Sendable () -> Void

    public init(_ collector: any Collector, stop: @escaping @Sendable () -> Void = {}) {
        self.collector = collector
        self.stop = stop
    }
}

/// `--collector.<collector>.<name> VALUE`: one extra setting of a collector.
public struct CollectorOption: Sendable {
    public var name: String
    public var valueName: String
    public var help: String
    public var defaultValue: String
    /// Refuses a value it cannot accept; the message names the flag and what it accepts.
    public var check: @Sendable (_ value: String, _ flag: String) throws(FlagValueError) -> Void

    public init(name: String, valueName: String, help: String, defaultValue: String,
                check: @escaping @Sendable (_ value: String, _ flag: String) throws(FlagValueError) -> Void) {
        self.name = name
        self.valueName = valueName
        self.help = help
        self.defaultValue = defaultValue
        self.check = check
    }
}

/// One switchable collector as the command line sees it: `--collector.<name>` /
/// `--no-collector.<name>`, its options, and how it is built and started. Each collector's file
/// declares its own; `CollectorCatalog.all` lists them.
public struct CollectorDescriptor: Sendable {
    public var name: String
    public var enabledByDefault: Bool
    public var help: String
    public var options: [CollectorOption]
    /// Builds the collector and starts its background work; `settings` holds every option's
    /// value (the default where none was given), each already accepted by its `check`.
    public var build: @Sendable (_ context: CollectorContext, _ settings: [String: String]) throws -> RunningCollector

    public init(name: String, enabledByDefault: Bool = true, help: String, options: [CollectorOption] = [],
                build: @escaping @Sendable (_ context: CollectorContext, _ settings: [String: String]) throws -> RunningCollector) {
        self.name = name
        self.enabledByDefault = enabledByDefault
        self.help = help
        self.options = options
        self.build = build
    }

    public var flag: String { "--collector.\(name)" }
}

/// The switchable collectors, in the order their flags are listed and their collectors built.
/// The scanner collector is not here: it is built from the scan engine.
public enum CollectorCatalog {
    public static let all: [CollectorDescriptor] = [
        ProcessCollector.descriptor,
        MemoryFailureCollector.descriptor,
        HwpoisonCollector.descriptor,
        EdacScrubCollector.descriptor,
    ]
}

/// Which collectors the command line enables and their option values.
public struct CollectorSelection: Sendable {
    /// The enabled collectors, in catalog order.
    public var enabled: [CollectorDescriptor]
    /// Option values per collector name, defaults filled in.
    public var settings: [String: [String: String]]

    /// Parses the `--collector.*` arguments ArgumentParser did not recognise, against `catalog`.
    /// Spellings: `--collector.X`, `--no-collector.X` (the last of the two wins), and
    /// `--collector.X.option VALUE` or `--collector.X.option=VALUE`. Any other argument is an
    /// error, worded as ArgumentParser words it.
    public init(parsing arguments: [String], catalog: [CollectorDescriptor] = CollectorCatalog.all) throws(FlagValueError) {
        var on = Dictionary(uniqueKeysWithValues: catalog.map { ($0.name, $0.enabledByDefault) })
        var settings = Dictionary(uniqueKeysWithValues: catalog.map { d in
            (d.name, Dictionary(uniqueKeysWithValues: d.options.map { ($0.name, $0.defaultValue) }))
        })
        var rest = arguments[...]
        while let argument = rest.popFirst() {
            let (flag, inline) = Self.split(argument)
            if flag.hasPrefix("--no-collector.") {
                let name = String(flag.dropFirst("--no-collector.".count))
                guard inline == nil, on[name] != nil else { throw Self.unknown(argument, catalog) }
                on[name] = false
                continue
            }
            guard flag.hasPrefix("--collector.") else {
                throw FlagValueError(argument.hasPrefix("-") ? "Unknown option '\(argument)'" : "Unexpected argument '\(argument)'")
            }
            let path = flag.dropFirst("--collector.".count)
            if on[String(path)] != nil {
                guard inline == nil else { throw FlagValueError("\(flag): takes no value") }
                on[String(path)] = true
                continue
            }
            guard let dot = path.firstIndex(of: "."),
                  let descriptor = catalog.first(where: { $0.name == path[..<dot] }),
                  let option = descriptor.options.first(where: { $0.name == path[path.index(after: dot)...] }) else {
                throw Self.unknown(argument, catalog)
            }
            guard let value = inline ?? rest.popFirst() else { throw FlagValueError("\(flag): missing value <\(option.valueName)>") }
            try option.check(value, flag)
            settings[descriptor.name]![option.name] = value
        }
        self.enabled = catalog.filter { on[$0.name]! }
        self.settings = settings
    }

    /// Builds and starts every enabled collector; if one fails, those already started are stopped.
    public func build(_ context: CollectorContext) throws -> [RunningCollector] {
        var running: [RunningCollector] = []
        for descriptor in enabled {
            do {
                running.append(try descriptor.build(context, settings[descriptor.name] ?? [:]))
            } catch {
                running.forEach { $0.stop() }
                throw error
            }
        }
        return running
    }

    private static func split(_ argument: String) -> (flag: String, value: String?) {
        guard argument.hasPrefix("--"), let eq = argument.firstIndex(of: "=") else { return (argument, nil) }
        return (String(argument[..<eq]), String(argument[argument.index(after: eq)...]))
    }

    private static func unknown(_ argument: String, _ catalog: [CollectorDescriptor]) -> FlagValueError {
        FlagValueError("Unknown option '\(argument)' (collectors: \(catalog.map(\.name).joined(separator: ", ")))")
    }
}

extension CollectorCatalog {
    /// The collector flags laid out as ArgumentParser lays out an OPTIONS section (its generated
    /// help cannot list flags parsed from unrecognised arguments), for `serve --help`.
    public static func helpText(_ catalog: [CollectorDescriptor] = all, width: Int = 80) -> String {
        var lines = ["COLLECTORS:"]
        for d in catalog {
            let state = d.enabledByDefault ? d.flag : "--no-collector.\(d.name)"
            lines += helpEntry("\(d.flag)/--no-collector.\(d.name)", "\(d.help) (default: \(state))", width: width)
            for o in d.options {
                lines += helpEntry("\(d.flag).\(o.name) <\(o.valueName)>", "\(o.help) (default: \(o.defaultValue))", width: width)
            }
        }
        return lines.joined(separator: "\n")
    }

    private static let helpIndent = 26

    private static func helpEntry(_ label: String, _ help: String, width: Int) -> [String] {
        var lines: [String] = []
        var current = "  " + label
        if current.count + 2 > helpIndent {
            lines.append(current)
            current = ""
        }
        for word in help.split(separator: " ") {
            let pad = current.isEmpty ? String(repeating: " ", count: helpIndent)
                : current.count < helpIndent ? String(repeating: " ", count: helpIndent - current.count) : " "
            if !current.isEmpty, current.count >= helpIndent, current.count + 1 + word.count > width {
                lines.append(current)
                current = String(repeating: " ", count: helpIndent) + word
            } else {
                current += pad + word
            }
        }
        lines.append(current)
        return lines
    }
}
