#if canImport(Glibc)
import Glibc
#endif

/// Why a scan flag value was refused; the message names the accepted form and range.
public struct OptionError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Parsers for the `--scan.*` and `--state.dir` flags (pure functions; the CLI adds the flag name).
public enum ScanOptions {
    /// Accepted `--scan.arena-bytes`: one page to 1 TiB.
    public static let arenaBytesRange: ClosedRange<Int> = 4096...(1 << 40)
    /// Accepted `--scan.coverage-window`, seconds: 1 minute to 366 days.
    public static let coverageWindowRange: ClosedRange<Double> = 60...(366 * 86_400)

    /// Parses a size: a number with an optional suffix `B`, `KiB`, `MiB`, `GiB`, `TiB`
    /// (`64MiB`, `4096`, `1GiB`), within `arenaBytesRange`.
    public static func parseBytes(_ text: String) throws(OptionError) -> Int {
        let t = text.trimmingCharacters(in: " ")
        let units: [(String, Int)] = [("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10), ("B", 1)]
        var digits = Substring(t)
        var factor = 1
        for (suffix, f) in units where t.hasSuffix(suffix) {
            digits = t.dropLast(suffix.count)
            factor = f
            break
        }
        guard let n = Int(digits), n >= 0 else {
            throw OptionError("\"\(text)\" is not a size (a number with an optional B, KiB, MiB, GiB or TiB suffix, e.g. 64MiB)")
        }
        let (bytes, overflow) = n.multipliedReportingOverflow(by: factor)
        guard !overflow, arenaBytesRange.contains(bytes) else {
            throw OptionError("\(text) is out of range (4KiB-1TiB)")
        }
        return bytes
    }

    /// Parses a duration: a number with a suffix `s`, `m`, `h` or `d` (`24h`, `90m`), within
    /// `coverageWindowRange`. Returns seconds.
    public static func parseDuration(_ text: String) throws(OptionError) -> Double {
        let t = text.trimmingCharacters(in: " ")
        let units: [(String, Double)] = [("s", 1), ("m", 60), ("h", 3600), ("d", 86_400)]
        guard let (suffix, factor) = units.first(where: { t.hasSuffix($0.0) }),
              let n = Double(t.dropLast(suffix.count)), n.isFinite, n >= 0 else {
            throw OptionError("\"\(text)\" is not a duration (a number with an s, m, h or d suffix, e.g. 24h)")
        }
        let seconds = n * factor
        guard coverageWindowRange.contains(seconds) else {
            throw OptionError("\(text) is out of range (1m-366d)")
        }
        return seconds
    }

    /// Parses `--scan.nodes` (`0,2-3`).
    public static func parseNodes(_ text: String) throws(OptionError) -> [Int] {
        do {
            let ids = try parseList(text)
            if ids.isEmpty { throw OptionError("the list is empty (e.g. 0 or 0,2-3)") }
            return ids
        } catch let e as OptionError {
            throw e
        } catch {
            throw OptionError("\(error) (e.g. 0 or 0,2-3)")
        }
    }

    /// The state directory: the flag; else `$STATE_DIRECTORY` (systemd; the first
    /// of a colon-separated list); else `/var/lib/mcescan-exporter` when it is or can be made
    /// writable; else `$XDG_STATE_HOME/mcescan-exporter`, or `~/.local/state/mcescan-exporter`.
    public static func stateDirectory(flag: String?, environment: [String: String],
                                      systemDirectory: String = "/var/lib/mcescan-exporter") -> String {
        if let flag, !flag.isEmpty { return flag }
        if let s = environment["STATE_DIRECTORY"], let first = s.split(separator: ":").first, !first.isEmpty {
            return String(first)
        }
        let parent = String(systemDirectory[..<(systemDirectory.lastIndex(of: "/") ?? systemDirectory.startIndex)])
        if access(systemDirectory, W_OK) == 0 || (access(systemDirectory, F_OK) != 0 && access(parent.isEmpty ? "/" : parent, W_OK) == 0) {
            return systemDirectory
        }
        if let x = environment["XDG_STATE_HOME"], x.hasPrefix("/") { return x + "/mcescan-exporter" }
        return (environment["HOME"] ?? "/tmp") + "/.local/state/mcescan-exporter"
    }

    /// Creates `path` (and missing parents) with mode 0700 where it does not exist, and checks
    /// that it is a writable directory.
    public static func prepareStateDirectory(_ path: String) throws(OptionError) {
        var prefix = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            prefix += "/" + part
            if mkdir(prefix, 0o700) != 0 && errno != EEXIST {
                throw OptionError("cannot create \(prefix): \(String(cString: strerror(errno)))")
            }
        }
        var st = stat()
        guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
            throw OptionError("\(path) is not a directory")
        }
        guard access(path, W_OK) == 0 else {
            throw OptionError("\(path) is not writable: \(String(cString: strerror(errno)))")
        }
    }

    /// The process environment as a dictionary.
    public static func processEnvironment() -> [String: String] {
        var env: [String: String] = [:]
        var p = environ
        while let entry = p.pointee {
            let s = String(cString: entry)
            if let eq = s.firstIndex(of: "=") { env[String(s[..<eq])] = String(s[s.index(after: eq)...]) }
            p += 1
        }
        return env
    }
}
