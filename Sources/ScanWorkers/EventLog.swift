import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// What an error event found (`kind` in events.jsonl).
public enum EventKind: String, Sendable, CaseIterable {
    /// A word read back different from the pattern written.
    case corruption
    /// A page raised SIGBUS BUS_MCEERR_AR/AO (hardware poison).
    case poison
    /// A page raised SIGBUS BUS_ADRERR/OBJERR (its backing is gone).
    case lostBacking = "lost_backing"
    /// A fault the control API injected (fire drill).
    case injected
}

/// One error found by a worker, as stored in the ring and in `events.jsonl`.
public struct ScanEvent: Sendable, Equatable {
    /// Increasing id, continued across restarts from the last line of events.jsonl.
    public var id: UInt64
    /// Wall-clock seconds since the epoch.
    public var time: Double
    public var node: Int
    public var memoryType: MemoryType
    public var kind: EventKind
    /// Byte offset of the word (corruption) or page (faults) in the scanned region.
    public var offset: UInt64
    /// Physical address, when `/proc/self/pagemap` gives PFNs.
    public var physAddr: UInt64?
    /// Expected and read word (corruption only).
    public var expected: UInt64?
    public var actual: UInt64?
    /// Flipped bits of the word (corruption), 0 for faults.
    public var bits: Int

    public init(id: UInt64 = 0, time: Double, node: Int, memoryType: MemoryType, kind: EventKind, offset: UInt64,
                physAddr: UInt64? = nil, expected: UInt64? = nil, actual: UInt64? = nil, bits: Int = 0) {
        self.id = id
        self.time = time
        self.node = node
        self.memoryType = memoryType
        self.kind = kind
        self.offset = offset
        self.physAddr = physAddr
        self.expected = expected
        self.actual = actual
        self.bits = bits
    }

    /// One JSON line (without the newline), keys in a fixed order: id, time, node, memory_type,
    /// kind, offset, phys_addr, expected, actual, bits. 64-bit words and addresses are hex strings
    /// (`"0x…"`) so no JSON reader rounds them; unknown values are `null`.
    public var jsonLine: String {
        func hex(_ v: UInt64?) -> String { v.map { "\"0x" + String($0, radix: 16) + "\"" } ?? "null" }
        return "{\"id\":\(id),\"time\":\"\(formatRFC3339(time))\",\"node\":\(node),\"memory_type\":\"\(memoryType.name)\","
            + "\"kind\":\"\(kind.rawValue)\",\"offset\":\(offset),\"phys_addr\":\(hex(physAddr)),"
            + "\"expected\":\(hex(expected)),\"actual\":\(hex(actual)),\"bits\":\(bits)}"
    }

    /// Parses a line written by `jsonLine`; nil for anything else.
    public init?(jsonLine line: some StringProtocol) {
        guard let fields = parseFlatJSONObject(String(line)) else { return nil }
        func str(_ k: String) -> String? { if case .string(let s)? = fields[k] { return s }; return nil }
        func num(_ k: String) -> UInt64? { if case .number(let n)? = fields[k] { return UInt64(n) }; return nil }
        func hex(_ k: String) -> UInt64?? {
            switch fields[k] {
            case .null?: return .some(nil)
            case .string(let s)? where s.hasPrefix("0x"): return UInt64(s.dropFirst(2), radix: 16).map { .some($0) }
            default: return nil
            }
        }
        guard let id = num("id"), let timeText = str("time"), let time = parseRFC3339(timeText),
              let node = num("node"), let type = str("memory_type").flatMap(MemoryType.init(name:)),
              let kind = str("kind").flatMap(EventKind.init(rawValue:)), let offset = num("offset"),
              let phys = hex("phys_addr"), let expected = hex("expected"), let actual = hex("actual"),
              let bits = num("bits") else { return nil }
        self.init(id: id, time: time, node: Int(node), memoryType: type, kind: kind, offset: offset,
                  physAddr: phys, expected: expected, actual: actual, bits: Int(bits))
    }
}

/// Why the event log could not be opened or written.
public struct EventLogError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// Every error found: the last `capacity` events in memory, and all of them appended to
/// `<state.dir>/events.jsonl` with `fsync` before the append returns (so an event counted as
/// reported survives a crash). Ids continue from the last line of the file after a restart.
public final class EventLog: Sendable {
    /// Events kept in memory (`GET /api/v1/events` serves these).
    public static let capacity = 1024
    /// The most events `events(after:limit:)` returns at once.
    public static let maxLimit = 1000

    private struct State {
        var ring: [ScanEvent] = []
        var nextID: UInt64 = 1
        var fd: Int32 = -1
        var writeFailures: UInt64 = 0
    }
    private let state: Locked<State>
    /// The file, or nil for a memory-only log.
    public let path: String?

    /// A log appended to `directory/events.jsonl` (created 0600 if missing), or memory-only when
    /// `directory` is nil. Reads the tail of an existing file to restore the ring and the next id.
    public init(directory: String?) throws(EventLogError) {
        var s = State()
        if let directory {
            let path = directory + "/events.jsonl"
            self.path = path
            let fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
            if fd < 0 { throw EventLogError(message: "open \(path): \(String(cString: strerror(errno)))") }
            s.fd = fd
            let restored = Self.readTail(fd: fd)
            s.ring = Array(restored.suffix(Self.capacity))
            if let last = restored.last { s.nextID = last.id + 1 }
        } else {
            self.path = nil
        }
        state = Locked(s)
    }

    deinit {
        state.withLock { if $0.fd >= 0 { close($0.fd) } }
    }

    /// Assigns ids to `events`, appends them to the file and fsyncs, then adds them to the ring.
    /// Returns the events with their ids. A write error is counted (`writeFailures`) and the
    /// events still enter the ring: they are then reported, but not durable.
    @discardableResult
    public func append(_ events: [ScanEvent]) -> [ScanEvent] {
        guard !events.isEmpty else { return [] }
        return state.withLock { s in
            var stamped = events
            var text = ""
            for i in stamped.indices {
                stamped[i].id = s.nextID
                s.nextID += 1
                text += stamped[i].jsonLine + "\n"
            }
            if s.fd >= 0 {
                var ok = true
                var bytes = Array(text.utf8)
                var done = 0
                while done < bytes.count {
                    let n = bytes.withUnsafeMutableBytes { write(s.fd, $0.baseAddress! + done, $0.count - done) }
                    if n < 0 { if errno == EINTR { continue }; ok = false; break }
                    done += n
                }
                bytes.removeAll()
                if !ok || fsync(s.fd) != 0 { s.writeFailures += 1 }
            }
            s.ring.append(contentsOf: stamped)
            if s.ring.count > Self.capacity { s.ring.removeFirst(s.ring.count - Self.capacity) }
            return stamped
        }
    }

    /// Events with id > `after`, oldest first, at most `limit` (capped at `maxLimit`).
    public func events(after: UInt64 = 0, limit: Int = maxLimit) -> [ScanEvent] {
        let n = max(0, min(limit, Self.maxLimit))
        return state.withLock { s in Array(s.ring.lazy.filter { $0.id > after }.prefix(n)) }
    }

    /// The id the next event gets.
    public var nextID: UInt64 { state.withLock { $0.nextID } }

    /// Appends that failed to reach the disk.
    public var writeFailures: UInt64 { state.withLock { $0.writeFailures } }

    /// Reads up to the last 1 MiB of the file and parses its complete lines.
    private static func readTail(fd: Int32) -> [ScanEvent] {
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_size > 0 else { return [] }
        let size = Int(st.st_size)
        let start = max(0, size - (1 << 20))
        var buffer = [UInt8](repeating: 0, count: size - start)
        var got = 0
        while got < buffer.count {
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + got, $0.count - got, off_t(start + got)) }
            if n <= 0 { if n < 0 && errno == EINTR { continue }; break }
            got += n
        }
        var lines = buffer[0..<got].split(separator: UInt8(ascii: "\n"))
        if start > 0, !lines.isEmpty { lines.removeFirst() }   // probably cut in the middle
        return lines.compactMap { ScanEvent(jsonLine: String(decoding: $0, as: UTF8.self)) }
    }
}

// MARK: small helpers (no Foundation)

enum FlatJSONValue: Equatable {
    case string(String)
    case number(Double)
    case null
}

/// Parses a one-level JSON object with string, number and null values (the shape of our own
/// event lines). Returns nil for anything else.
func parseFlatJSONObject(_ text: String) -> [String: FlatJSONValue]? {
    var chars = Array(text.utf8)[...]
    func skipWS() { while let c = chars.first, c == 32 || c == 9 || c == 10 || c == 13 { chars.removeFirst() } }
    func string() -> String? {
        guard chars.first == UInt8(ascii: "\"") else { return nil }
        chars.removeFirst()
        var out: [UInt8] = []
        while let c = chars.first {
            chars.removeFirst()
            if c == UInt8(ascii: "\"") { return String(decoding: out, as: UTF8.self) }
            if c == UInt8(ascii: "\\") {
                guard let e = chars.first else { return nil }
                chars.removeFirst()
                switch e {
                case UInt8(ascii: "n"): out.append(10)
                case UInt8(ascii: "t"): out.append(9)
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                default: return nil
                }
            } else {
                out.append(c)
            }
        }
        return nil
    }
    skipWS()
    guard chars.first == UInt8(ascii: "{") else { return nil }
    chars.removeFirst()
    var result: [String: FlatJSONValue] = [:]
    skipWS()
    if chars.first == UInt8(ascii: "}") { chars.removeFirst(); skipWS(); return chars.isEmpty ? result : nil }
    while true {
        skipWS()
        guard let key = string() else { return nil }
        skipWS()
        guard chars.first == UInt8(ascii: ":") else { return nil }
        chars.removeFirst()
        skipWS()
        if chars.first == UInt8(ascii: "\"") {
            guard let s = string() else { return nil }
            result[key] = .string(s)
        } else if chars.starts(with: "null".utf8) {
            chars.removeFirst(4)
            result[key] = .null
        } else {
            var num: [UInt8] = []
            while let c = chars.first, (c >= 48 && c <= 57) || c == UInt8(ascii: "-") || c == UInt8(ascii: ".")
                    || c == UInt8(ascii: "e") || c == UInt8(ascii: "E") || c == UInt8(ascii: "+") {
                num.append(c)
                chars.removeFirst()
            }
            guard let v = Double(String(decoding: num, as: UTF8.self)) else { return nil }
            result[key] = .number(v)
        }
        skipWS()
        guard let c = chars.first else { return nil }
        chars.removeFirst()
        if c == UInt8(ascii: "}") { break }
        guard c == UInt8(ascii: ",") else { return nil }
    }
    skipWS()
    return chars.isEmpty ? result : nil
}

/// `2026-11-27T06:30:00.123Z` for wall-clock seconds.
public func formatRFC3339(_ seconds: Double) -> String {
    var whole = time_t(seconds.rounded(.down))
    var millis = Int(((seconds - Double(whole)) * 1000).rounded())
    if millis >= 1000 { millis -= 1000; whole += 1 }
    var tm = tm()
    gmtime_r(&whole, &tm)
    func pad(_ v: Int32, _ w: Int) -> String {
        let s = String(v)
        return String(repeating: "0", count: max(0, w - s.count)) + s
    }
    return "\(pad(tm.tm_year + 1900, 4))-\(pad(tm.tm_mon + 1, 2))-\(pad(tm.tm_mday, 2))T"
        + "\(pad(tm.tm_hour, 2)):\(pad(tm.tm_min, 2)):\(pad(tm.tm_sec, 2)).\(pad(Int32(millis), 3))Z"
}

/// Parses what `formatRFC3339` writes (UTC, `Z`, optional fraction).
public func parseRFC3339(_ text: String) -> Double? {
    let u = Array(text.utf8)
    guard u.count >= 20, u.last == UInt8(ascii: "Z"), u[4] == UInt8(ascii: "-"), u[10] == UInt8(ascii: "T") else { return nil }
    func int(_ r: Range<Int>) -> Int32? { Int32(String(decoding: u[r], as: UTF8.self)) }
    guard let year = int(0..<4), let mon = int(5..<7), let day = int(8..<10), let hour = int(11..<13),
          let min = int(14..<16), let sec = int(17..<19) else { return nil }
    var frac = 0.0
    if u[19] == UInt8(ascii: ".") {
        guard let f = Double("0" + String(decoding: u[19..<(u.count - 1)], as: UTF8.self)) else { return nil }
        frac = f
    }
    var tm = tm()
    tm.tm_year = year - 1900
    tm.tm_mon = mon - 1
    tm.tm_mday = day
    tm.tm_hour = hour
    tm.tm_min = min
    tm.tm_sec = sec
    let t = timegm(&tm)
    return t == -1 ? nil : Double(t) + frac
}
