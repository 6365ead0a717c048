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

    /// Parses a line written by `jsonLine`; nil for anything else (`decode(jsonLine:)` says why).
    public init?(jsonLine line: some StringProtocol) {
        guard let event = try? Self.decode(jsonLine: line) else { return nil }
        self = event
    }

    /// Ids stay below this, so counting on from a restored id can never overflow.
    static let maxID: UInt64 = 1 << 62

    /// Parses a line written by `jsonLine` with the strict JSON parser the control API uses: exact
    /// integers (no `-1`, `1e20` or `5.0` where a count or id belongs), no duplicate keys. Throws
    /// naming the first field that is missing or wrong.
    public static func decode(jsonLine line: some StringProtocol) throws(EventLineError) -> ScanEvent {
        let value: JSONValue
        do { value = try StrictJSONParser.parse(Array(line.utf8), maxDepth: 2) } catch {
            throw EventLineError(message: "not JSON: \(error)")
        }
        guard case .object = value else { throw EventLineError(message: "not a JSON object") }
        func field<T>(_ key: String, _ read: (JSONValue) -> T?) throws(EventLineError) -> T {
            guard let v = value[key] else { throw EventLineError(message: "\"\(key)\" is missing") }
            guard let parsed = read(v) else { throw EventLineError(message: "\"\(key)\" has an unexpected value (\(v.typeName))") }
            return parsed
        }
        func hex(_ v: JSONValue) -> UInt64?? {
            if v == .null { return .some(nil) }
            guard let s = v.stringValue, s.hasPrefix("0x"), let n = UInt64(s.dropFirst(2), radix: 16) else { return nil }
            return .some(n)
        }
        func int(_ v: JSONValue) -> Int? { v.unsignedInteger.flatMap { Int(exactly: $0) } }
        return ScanEvent(
            id: try field("id") { $0.unsignedInteger.flatMap { $0 < maxID ? $0 : nil } },
            time: try field("time") { $0.stringValue.flatMap(parseRFC3339) },
            node: try field("node", int),
            memoryType: try field("memory_type") { $0.stringValue.flatMap(MemoryType.init(name:)) },
            kind: try field("kind") { $0.stringValue.flatMap(EventKind.init(rawValue:)) },
            offset: try field("offset") { $0.unsignedInteger },
            physAddr: try field("phys_addr", hex), expected: try field("expected", hex), actual: try field("actual", hex),
            bits: try field("bits", int))
    }
}

/// Why a line of `events.jsonl` could not be read back.
public struct EventLineError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

// MARK: timestamps (no Foundation)

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
