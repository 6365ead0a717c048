import HostFS

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

        // One unlabelled sample per family; a family whose source is missing is left out.
        func add(_ name: String, _ type: MetricType, _ help: String, _ metric: Metric?) throws {
            guard let metric else { return }
            families.append(try MetricFamily(name: name, help: help, type: type, metrics: [metric]))
        }
        let heap = (try? procfs.readBytes("self/maps", limit: 16 << 20)).flatMap { parseHeapBytes($0) }
        try add("process_cpu_seconds_total", .counter, "Total user and system CPU time spent in seconds.",
                Metric([:], Double(stat.userTicks + stat.systemTicks) / ticksPerSecond))
        try add("process_open_fds", .gauge, "Number of open file descriptors.", Metric([:], UInt64(fds)))
        try add("process_max_fds", .gauge, "Maximum number of open file descriptors.", limits.openFilesSoft.map { Metric([:], $0) })
        try add("process_virtual_memory_bytes", .gauge, "Virtual memory size in bytes.", Metric([:], stat.virtualBytes))
        try add("process_virtual_memory_max_bytes", .gauge, "Maximum amount of virtual memory available in bytes.",
                limits.addressSpaceSoft.map { Metric([:], $0) })
        try add("process_resident_memory_bytes", .gauge, "Resident memory size in bytes.", Metric([:], stat.residentPages * pageSize))
        try add("process_heap_bytes", .gauge, "Size of the process heap ([heap] in /proc/self/maps) in bytes.", heap.map { Metric([:], $0) })
        try add("process_start_time_seconds", .gauge, "Start time of the process since unix epoch in seconds.",
                Metric([:], Double(bootTime) + Double(stat.startTicks) / ticksPerSecond))
        try add("process_threads", .gauge, "Number of OS threads in the process.", Metric([:], stat.threads))
    }
}

extension ProcessCollector {
    /// `--collector.process`.
    public static let descriptor = CollectorDescriptor(
        name: "process", help: "The process_* metrics of the exporter itself.") { context, _ in
        RunningCollector(ProcessCollector(procfs: context.procfs))
    }
}
