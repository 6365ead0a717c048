import Testing
@testable import MetricsExporter
import ScanWorkers
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

@Suite("Self metrics")
struct ProcessCollectorTests {
    @Test("/proc/self/stat: fields counted from the last ')' of the command name")
    func stat() throws {
        let line = "4242 (weird ) (name) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 125 0 0 39 19 7 0 123456 335568896 4458 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
        let s = try ProcSelfStat.parse(Array(line.utf8))
        #expect(s == ProcSelfStat(userTicks: 250, systemTicks: 125, threads: 7, startTicks: 123456, virtualBytes: 335568896, residentPages: 4458))
    }

    @Test("malformed stat is an error, not a crash", arguments: ["", "4242 no parens S 1", "1 (x) S 1 2", "1 (x) S a b c d e f g h i j k l m n o p q r s t u v w"])
    func badStat(_ text: String) {
        #expect(throws: HostFSError.self) { try ProcSelfStat.parse(Array(text.utf8)) }
    }

    @Test("limits: soft values, unlimited as UInt64.max")
    func limits() throws {
        let text = """
        Limit                     Soft Limit           Hard Limit           Units
        Max cpu time              unlimited            unlimited            seconds
        Max open files            1024                 1048576              files
        Max address space         unlimited            unlimited            bytes

        """
        #expect(try ProcLimits.parse(text) == ProcLimits(openFilesSoft: 1024, addressSpaceSoft: .max))
        #expect(try ProcLimits.parse("Limit Soft\n") == ProcLimits(openFilesSoft: nil, addressSpaceSoft: nil))
        #expect(throws: HostFSError.self) { try ProcLimits.parse("Max open files            lots   1 files\n") }
    }

    @Test("boot time and heap")
    func bootAndHeap() throws {
        #expect(try parseBootTime("cpu  1 2 3\nbtime 1795000000\nprocesses 5\n") == 1_795_000_000)
        #expect(throws: HostFSError.self) { try parseBootTime("cpu 1 2 3\n") }
        let maps = "55d4c8a2e000-55d4c8a4f000 r-xp 00000000 fd:01 1 /bin/x\n55d4c9000000-55d4c9064000 rw-p 00000000 00:00 0                          [heap]\n"
        #expect(parseHeapBytes(maps) == 0x64000)
        #expect(parseHeapBytes("7f00-7f10 rw-p 0 0 0 [stack]\n") == nil)
    }

    @Test("the collector reads a fixture procfs and emits the nine process metrics")
    func fixture() throws {
        let root = try TempTree()
        defer { root.remove() }
        try root.write("self/stat", "77 (mcescan-exporte) S 1 77 77 0 -1 0 0 0 0 0 300 100 0 0 39 19 5 0 5000 400000000 2500 18446744073709551615\n")
        try root.write("self/limits", "Max open files            2048                 4096                 files\nMax address space         1073741824           unlimited            bytes\n")
        try root.write("self/maps", "1000-3000 rw-p 00000000 00:00 0 [heap]\n")
        try root.write("stat", "btime 1700000000\n")
        for fd in ["0", "1", "2"] { try root.write("self/fd/\(fd)", "") }
        var families: [MetricFamily] = []
        try ProcessCollector(procfs: ProcFS(root: root.path), ticksPerSecond: 100, pageSize: 4096).collect(into: &families)
        let values = Dictionary(uniqueKeysWithValues: families.map { ($0.name, $0.metrics[0].value) })
        #expect(values["process_cpu_seconds_total"] == .double(4))
        #expect(values["process_open_fds"] == .unsigned(3))
        #expect(values["process_max_fds"] == .unsigned(2048))
        #expect(values["process_virtual_memory_bytes"] == .unsigned(400_000_000))
        #expect(values["process_virtual_memory_max_bytes"] == .unsigned(1_073_741_824))
        #expect(values["process_resident_memory_bytes"] == .unsigned(2500 * 4096))
        #expect(values["process_heap_bytes"] == .unsigned(0x2000))
        #expect(values["process_start_time_seconds"] == .double(1_700_000_050))
        #expect(values["process_threads"] == .unsigned(5))
        #expect(families.count == 9)
    }

    @Test("the real /proc works")
    func live() throws {
        var families: [MetricFamily] = []
        try ProcessCollector(procfs: ProcFS(root: "/proc")).collect(into: &families)
        // process_heap_bytes is absent when the allocator does not use a brk heap (no [heap]
        // mapping, e.g. under ThreadSanitizer); the other eight are always there.
        let names = Set(families.map(\.name))
        #expect(names.isSuperset(of: ["process_cpu_seconds_total", "process_open_fds", "process_max_fds",
                                      "process_virtual_memory_bytes", "process_virtual_memory_max_bytes",
                                      "process_resident_memory_bytes", "process_start_time_seconds", "process_threads"]))
        #expect(names.subtracting(["process_heap_bytes"]).count == 8)
    }

    @Test("a missing procfs makes the collector fail, so the scrape reports success 0")
    func missing() {
        var families: [MetricFamily] = []
        #expect(throws: HostFSError.self) { try ProcessCollector(procfs: ProcFS(root: "/nonexistent-procfs")).collect(into: &families) }
    }
}

