/// Attributes of an EDAC scrub instance, `bus/edac/devices/<device>/scrubN/`
/// (`Documentation/ABI/testing/sysfs-edac-scrub`, Linux 6.15+).
public enum EdacScrub {
    /// `scrubN` directory names (`scrub0`, `scrub1`, ...).
    public static func isScrubInstance(_ name: String) -> Bool {
        guard name.hasPrefix("scrub") else { return false }
        let digits = name.dropFirst(5)
        return !digits.isEmpty && digits.allSatisfy { $0.isASCII && $0.isNumber }
    }

    /// Pure parser of `enable_background`: `0` or `1`, optional trailing newline.
    public static func parseEnabled(_ bytes: [UInt8], path: String = "enable_background") throws(HostFSError) -> UInt64 {
        let v = try MemoryFailureStats.parseCount(bytes, path: path)
        guard v <= 1 else { throw HostFSError(.malformed, path: path, "expected 0 or 1, read \(v)") }
        return v
    }

    /// Pure parser of a `*_cycle_duration` attribute: whole seconds, optional trailing newline.
    public static func parseSeconds(_ bytes: [UInt8], path: String = "cycle_duration") throws(HostFSError) -> UInt64 {
        try MemoryFailureStats.parseCount(bytes, path: path)
    }
}
