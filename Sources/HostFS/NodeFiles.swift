// Per-node sysfs files under `devices/system/node/nodeN/`.

/// Parses `nodeN/meminfo` (`Node 0 MemTotal:  5728032 kB`) into bytes per key. The first integer
/// on each line is the node id; the value is the number after the `Key:` token.
public func parseNodeMeminfo(_ text: String) throws(HostFSError) -> [String: UInt64] {
    var values: [String: UInt64] = [:]
    for line in text.split(separator: "\n") {
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        guard let keyIndex = fields.firstIndex(where: { $0.hasSuffix(":") }), keyIndex + 1 < fields.count else { continue }
        let key = String(fields[keyIndex].dropLast())
        guard let value = UInt64(fields[keyIndex + 1]) else {
            throw HostFSError(.malformed, path: "meminfo", "\(key) value \"\(fields[keyIndex + 1])\" is not a number")
        }
        let unit = keyIndex + 2 < fields.count ? fields[keyIndex + 2] : ""
        values[key] = unit == "kB" ? value * 1024 : value
    }
    return values
}

/// Parses `nodeN/distance` (`10 21 21`).
public func parseDistances(_ text: String) throws(HostFSError) -> [Int] {
    var result: [Int] = []
    for field in text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }) {
        guard let d = Int(field), d >= 0 else {
            throw HostFSError(.malformed, path: "distance", "\"\(field)\" is not a number")
        }
        result.append(d)
    }
    return result
}
