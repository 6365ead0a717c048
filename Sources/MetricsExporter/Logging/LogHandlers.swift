import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `--log.format`: one line per event on standard error.
public enum LogFormat: String, Sendable, CaseIterable {
    /// `ts=… level=info msg="…" key=value`
    case logfmt
    /// `{"ts":"…","level":"info","msg":"…","key":"value"}`
    case json
}

/// A swift-log handler writing logfmt or JSON lines to a file descriptor (stderr by default).
public struct LineLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    let label: String
    let format: LogFormat
    let sink: LogSink

    public init(label: String, format: LogFormat, level: Logger.Level, sink: LogSink = .standardError) {
        self.label = label
        self.format = format
        self.logLevel = level
        self.sink = sink
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields: [(String, String)] = [("ts", Self.timestamp()), ("level", Self.levelName(event.level)), ("msg", "\(event.message)")]
        for (k, v) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }).sorted(by: { $0.key < $1.key }) {
            fields.append((k, "\(v)"))
        }
        let line: String
        switch format {
        case .logfmt:
            line = fields.map { "\($0.0)=\(Self.logfmtValue($0.1))" }.joined(separator: " ")
        case .json:
            line = "{" + fields.map { "\(jsonString($0.0)):\(jsonString($0.1))" }.joined(separator: ",") + "}"
        }
        sink.write(line + "\n")
    }

    public static func levelName(_ level: Logger.Level) -> String {
        switch level {
        case .trace, .debug: return "debug"
        case .info, .notice: return "info"
        case .warning: return "warn"
        case .error, .critical: return "error"
        }
    }

    static func logfmtValue(_ v: String) -> String {
        if !v.isEmpty, !v.contains(where: { $0 == " " || $0 == "=" || $0 == "\"" || $0 == "\n" || $0 == "\\" }) {
            return v
        }
        return jsonString(v)
    }

    /// RFC 3339 UTC with milliseconds, from the real-time clock.
    static func timestamp() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = time_t(ts.tv_sec)
        var tm = tm()
        gmtime_r(&t, &tm)
        func pad(_ v: Int32, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(pad(tm.tm_year + 1900, 4))-\(pad(tm.tm_mon + 1, 2))-\(pad(tm.tm_mday, 2))T" +
            "\(pad(tm.tm_hour, 2)):\(pad(tm.tm_min, 2)):\(pad(tm.tm_sec, 2)).\(pad(Int32(ts.tv_nsec / 1_000_000), 3))Z"
    }
}

/// Where log lines go: a file descriptor written with one `write(2)` per line (lines from
/// different threads never interleave), or memory for tests.
public final class LogSink: Sendable {
    /// -1: keep lines in memory.
    let fd: Int32
    let captured = Mutex<[String]>([])

    public static let standardError = LogSink(fd: 2)

    public init(fd: Int32) {
        self.fd = fd
    }

    /// A sink that keeps lines in memory (tests).
    public convenience init() {
        self.init(fd: -1)
    }

    /// The lines a memory sink has kept.
    public var lines: [String] { captured.withLock { $0 } }

    func write(_ line: String) {
        if fd < 0 {
            captured.withLock { $0.append(line) }
            return
        }
        var line = line
        line.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                if n < 0 { if errno == EINTR { continue }; return }
                offset += n
            }
        }
    }
}
