// The process files of procfs: `self/stat`, `self/limits`, `self/maps`, `self/status`, and the
// boot time of `stat`.

/// The fields of `/proc/<pid>/stat` that the process metrics need.
public struct ProcSelfStat: Equatable, Sendable {
    public var userTicks: UInt64
    public var systemTicks: UInt64
    public var threads: UInt64
    public var startTicks: UInt64
    public var virtualBytes: UInt64
    public var residentPages: UInt64

    /// Parses `pid (comm) state ppid …`; `comm` may hold spaces and parentheses, so fields are
    /// counted from the last `)`.
    public static func parse(_ bytes: [UInt8]) throws -> ProcSelfStat {
        guard let close = bytes.lastIndex(of: UInt8(ascii: ")")) else {
            throw HostFSError(.malformed, path: "self/stat", "no ')' after the command name")
        }
        let fields = bytes[(close + 1)...].split(separator: UInt8(ascii: " "), omittingEmptySubsequences: true)
            .map { String(decoding: $0, as: UTF8.self).trimmingCharacters(in: "\n") }
        // fields[0] is field 3 (state) of proc(5).
        func field(_ n: Int) throws -> UInt64 {
            let i = n - 3
            guard i < fields.count, let v = UInt64(fields[i]) else {
                throw HostFSError(.malformed, path: "self/stat", "field \(n) missing or not a number")
            }
            return v
        }
        return ProcSelfStat(userTicks: try field(14), systemTicks: try field(15), threads: try field(20),
                            startTicks: try field(22), virtualBytes: try field(23), residentPages: try field(24))
    }
}

/// The soft limits of `/proc/<pid>/limits` that the process metrics need (nil: not listed).
/// "unlimited" is reported as UInt64.max, as the Go client does.
public struct ProcLimits: Equatable, Sendable {
    public var openFilesSoft: UInt64?
    public var addressSpaceSoft: UInt64?

    public static func parse(_ text: String) throws -> ProcLimits {
        var limits = ProcLimits()
        for line in text.split(separator: "\n") {
            for (key, path) in [("Max open files", \ProcLimits.openFilesSoft), ("Max address space", \ProcLimits.addressSpaceSoft)]
            where line.hasPrefix(key) {
                let rest = line.dropFirst(key.count).split(separator: " ")
                guard let soft = rest.first else { throw HostFSError(.malformed, path: "self/limits", "no soft limit for \(key)") }
                if soft == "unlimited" {
                    limits[keyPath: path] = UInt64.max
                } else if let v = UInt64(soft) {
                    limits[keyPath: path] = v
                } else {
                    throw HostFSError(.malformed, path: "self/limits", "\(key): \"\(soft)\" is not a number")
                }
            }
        }
        return limits
    }
}

/// `btime` of `/proc/stat`: the boot time in seconds since the epoch.
public func parseBootTime(_ text: String) throws -> UInt64 {
    for line in text.split(separator: "\n") where line.hasPrefix("btime ") {
        if let v = UInt64(String(line.dropFirst(6)).trimmingCharacters(in: " \t")) { return v }
    }
    throw HostFSError(.malformed, path: "stat", "no btime line")
}

/// Size of the `[heap]` mapping of `/proc/<pid>/maps`, nil when there is none. Works on bytes:
/// the file has a line per mapping (hundreds), and splitting it as Swift Characters cost a
/// millisecond per scrape.
public func parseHeapBytes(_ maps: [UInt8]) -> UInt64? {
    let marker = Array("[heap]".utf8)
    var lineStart = 0
    for i in 0...maps.count {
        guard i == maps.count || maps[i] == UInt8(ascii: "\n") else { continue }
        defer { lineStart = i + 1 }
        var end = i
        while end > lineStart, maps[end - 1] == UInt8(ascii: " ") { end -= 1 }
        guard end - lineStart >= marker.count, maps[(end - marker.count)..<end].elementsEqual(marker) else { continue }
        var lo: UInt64 = 0, hi: UInt64 = 0
        var j = lineStart
        func hex(_ value: inout UInt64) -> Bool {
            var digits = 0
            while j < end, let d = hexValue(maps[j]) { value = value << 4 | d; j += 1; digits += 1 }
            return digits > 0 && digits <= 16
        }
        guard hex(&lo), j < end, maps[j] == UInt8(ascii: "-") else { continue }
        j += 1
        guard hex(&hi), hi >= lo else { continue }
        return hi - lo
    }
    return nil
}

/// `parseHeapBytes` on text.
public func parseHeapBytes(_ maps: String) -> UInt64? { parseHeapBytes(Array(maps.utf8)) }

private func hexValue(_ b: UInt8) -> UInt64? {
    switch b {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt64(b - UInt8(ascii: "0"))
    case UInt8(ascii: "a")...UInt8(ascii: "f"): return UInt64(b - UInt8(ascii: "a") + 10)
    case UInt8(ascii: "A")...UInt8(ascii: "F"): return UInt64(b - UInt8(ascii: "A") + 10)
    default: return nil
    }
}

/// The `CapEff:` mask of a `/proc/<pid>/status` text, nil when absent or malformed.
public func parseCapEff(_ status: String) -> UInt64? {
    for line in status.split(separator: "\n") where line.hasPrefix("CapEff:") {
        return UInt64(String(line.dropFirst(7)).trimmingCharacters(in: " \t"), radix: 16)
    }
    return nil
}
