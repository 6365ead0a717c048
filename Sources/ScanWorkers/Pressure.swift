import HostFS

/// The free-memory guard of a node: the reserve (`--scan.free-reserve-ratio`) and PSI
/// (`--scan.pressure-threshold`) checks that decide whether a sweep may take memory now.
public struct MemoryGuard: Sendable {
    public var sysfs: SysFS
    public var procfs: ProcFS
    /// Never leave MemFree below this share of MemTotal.
    public var reserveRatio: Double
    /// Back off while PSI memory `some avg10` is above this (percent).
    public var pressureThreshold: Double

    /// Default `--scan.free-reserve-ratio`.
    public static let defaultReserveRatio = 0.05
    /// Default `--scan.pressure-threshold`.
    public static let defaultPressureThreshold = 10.0

    public init(sysfs: SysFS, procfs: ProcFS, reserveRatio: Double = defaultReserveRatio,
                pressureThreshold: Double = defaultPressureThreshold) {
        self.sysfs = sysfs
        self.procfs = procfs
        self.reserveRatio = reserveRatio
        self.pressureThreshold = pressureThreshold
    }

    /// Whether `bytes` may be taken from node `node` now; nil means yes, otherwise the reason to
    /// back off. Reads `devices/system/node/nodeN/meminfo` (MemFree, MemTotal) under sysfs and
    /// `pressure/memory` under procfs (a kernel without PSI has no file: that check is skipped).
    /// An unreadable meminfo backs off as `unavailable` (never take memory blind).
    public func check(node: Int, bytes: UInt64) -> BackoffReason? {
        if let reason = pressureBackoff() { return reason }
        guard let text = try? sysfs.readString("devices/system/node/node\(node)/meminfo"),
              let info = try? parseNodeMeminfo(text),
              let free = info["MemFree"], let total = info["MemTotal"] else {
            return .unavailable
        }
        return Self.reserveAllows(free: free, total: total, take: bytes, ratio: reserveRatio) ? nil : .reserve
    }

    /// `.pressure` while PSI memory `some avg10` is above the threshold, else nil (also nil
    /// when the kernel has no PSI file).
    public func pressureBackoff() -> BackoffReason? {
        if let text = try? procfs.readString("pressure/memory"), let avg10 = try? parsePSISomeAvg10(text),
           avg10 > pressureThreshold {
            return .pressure
        }
        return nil
    }

    /// True when taking `take` bytes leaves at least `ratio * total` free.
    public static func reserveAllows(free: UInt64, total: UInt64, take: UInt64, ratio: Double) -> Bool {
        let reserve = UInt64((Double(total) * ratio).rounded(.up))
        return free >= take && free - take >= reserve
    }

    /// Free huge pages of `sizeKB` in node `node`'s pool
    /// (`devices/system/node/nodeN/hugepages/hugepages-<size>kB/free_hugepages`); 0 when absent.
    public func freeHugePages(node: Int, sizeKB: Int = 2048) -> UInt64 {
        (try? sysfs.readUInt64("devices/system/node/node\(node)/hugepages/hugepages-\(sizeKB)kB/free_hugepages")) ?? 0
    }

    /// MemTotal of the node, bytes, or nil when unreadable.
    public func memTotal(node: Int) -> UInt64? {
        guard let text = try? sysfs.readString("devices/system/node/node\(node)/meminfo"),
              let info = try? parseNodeMeminfo(text) else { return nil }
        return info["MemTotal"]
    }
}
