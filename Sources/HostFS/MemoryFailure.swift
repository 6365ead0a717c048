// The files of `devices/system/node/nodeN/memory_failure/` (Linux 6.3+, CONFIG_MEMORY_FAILURE).


/// One node's `memory_failure/` counts.
public struct MemoryFailureStats: Sendable, Equatable {
    /// ignored, failed, delayed, recovered.
    public var counts: [UInt64] = [0, 0, 0, 0]
    /// The `total` file, nil where the kernel does not provide it.
    public var total: UInt64?

    public init(counts: [UInt64] = [0, 0, 0, 0], total: UInt64? = nil) {
        self.counts = counts
        self.total = total
    }

    /// ignored + failed + delayed + recovered.
    public var sum: UInt64 { counts.reduce(0, &+) }

    /// `total == ignored + failed + delayed + recovered` (true when there is no `total`).
    public var isConsistent: Bool { total.map { $0 == sum } ?? true }

    /// Pure parser of one count file: a decimal integer and an optional trailing newline.
    public static func parseCount(_ bytes: [UInt8], path: String = "memory_failure") throws(HostFSError) -> UInt64 {
        var body = bytes[...]
        if body.last == UInt8(ascii: "\n") { body = body.dropLast() }
        guard !body.isEmpty, body.count <= 20, body.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              let v = UInt64(String(decoding: body, as: UTF8.self)) else {
            throw HostFSError(.malformed, path: path, "expected a decimal count, read \"\(String(decoding: bytes.prefix(32), as: UTF8.self))\"")
        }
        return v
    }
}
