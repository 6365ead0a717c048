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

extension ProcessCollector {
    /// `--collector.process`.
    public static let descriptor = CollectorDescriptor(
        name: "process", help: "The process_* metrics of the exporter itself.") { context, _ in
        RunningCollector(ProcessCollector(procfs: context.procfs))
    }
}
