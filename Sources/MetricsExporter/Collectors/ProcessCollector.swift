import ScanWorkers

#if canImport(Glibc)
import Glibc
#endif

/// The standard `process_*` metrics of the exporter's own process, read from `self/` under
/// `--path.procfs` (`/proc/self/{stat,fd,limits,maps}` and `/proc/stat` for the boot time).
public struct ProcessCollector: Collector {
    public let name = "process"
    let procfs: ProcFS
    /// `btime` of `<procfs>/stat`, read once: it does not change while the system runs, and the
    /// kernel builds the whole of /proc/stat (every CPU and interrupt counter) on each read.
    let bootTime: UInt64?
    let ticksPerSecond: Double
    let pageSize: UInt64

    /// - Parameters:
    ///   - procfs: the procfs root; `self/` below it is read.
    ///   - ticksPerSecond / pageSize: `sysconf(_SC_CLK_TCK)` / `sysconf(_SC_PAGESIZE)` of this host.
    public init(procfs: ProcFS,
                ticksPerSecond: Double = Double(sysconf(Int32(_SC_CLK_TCK))),
                pageSize: UInt64 = UInt64(sysconf(Int32(_SC_PAGESIZE)))) {
        self.procfs = procfs
        self.ticksPerSecond = ticksPerSecond
        self.pageSize = pageSize
        self.bootTime = try? parseBootTime(procfs.readString("stat"))
    }

    public func collect(into families: inout [MetricFamily]) throws {
        let stat = try ProcSelfStat.parse(procfs.readBytes("self/stat"))
        let limits = try ProcLimits.parse(procfs.readString("self/limits"))
        let bootTime = try self.bootTime ?? parseBootTime(procfs.readString("stat"))
        let fds = try procfs.list("self/fd").count

        families.append(try MetricFamily(
            name: "process_cpu_seconds_total", help: "Total user and system CPU time spent in seconds.",
            type: .counter, metrics: [Metric([:], Double(stat.userTicks + stat.systemTicks) / ticksPerSecond)]))
        families.append(try MetricFamily(
            name: "process_open_fds", help: "Number of open file descriptors.",
            type: .gauge, metrics: [Metric([:], UInt64(fds))]))
        if let maxFDs = limits.openFilesSoft {
            families.append(try MetricFamily(
                name: "process_max_fds", help: "Maximum number of open file descriptors.",
                type: .gauge, metrics: [Metric([:], maxFDs)]))
        }
        families.append(try MetricFamily(
            name: "process_virtual_memory_bytes", help: "Virtual memory size in bytes.",
            type: .gauge, metrics: [Metric([:], stat.virtualBytes)]))
        if let maxVM = limits.addressSpaceSoft {
            families.append(try MetricFamily(
                name: "process_virtual_memory_max_bytes", help: "Maximum amount of virtual memory available in bytes.",
                type: .gauge, metrics: [Metric([:], maxVM)]))
        }
        families.append(try MetricFamily(
            name: "process_resident_memory_bytes", help: "Resident memory size in bytes.",
            type: .gauge, metrics: [Metric([:], stat.residentPages * pageSize)]))
        if let maps = try? procfs.readBytes("self/maps", limit: 16 << 20), let heap = parseHeapBytes(maps) {
            families.append(try MetricFamily(
                name: "process_heap_bytes", help: "Size of the process heap ([heap] in /proc/self/maps) in bytes.",
                type: .gauge, metrics: [Metric([:], heap)]))
        }
        families.append(try MetricFamily(
            name: "process_start_time_seconds", help: "Start time of the process since unix epoch in seconds.",
            type: .gauge, metrics: [Metric([:], Double(bootTime) + Double(stat.startTicks) / ticksPerSecond)]))
        families.append(try MetricFamily(
            name: "process_threads", help: "Number of OS threads in the process.",
            type: .gauge, metrics: [Metric([:], stat.threads)]))
    }
}

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
        if let v = UInt64(line.dropFirst(6).trimmingWhitespace()) { return v }
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
