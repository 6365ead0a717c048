import HostFS
import Testing
@testable import MetricsExporter

#if canImport(Glibc)
import Glibc
#endif

@Suite("Self metrics")
struct ProcessCollectorTests {
    @Test("the collector reads a fixture procfs and emits the nine process metrics")
    func fixture() throws {
        let root = TempTree()
        defer { root.remove() }
        root.write("self/stat", "77 (mcescan-exporte) S 1 77 77 0 -1 0 0 0 0 0 300 100 0 0 39 19 5 0 5000 400000000 2500 18446744073709551615\n")
        root.write("self/limits", "Max open files            2048                 4096                 files\nMax address space         1073741824           unlimited            bytes\n")
        root.write("self/maps", "1000-3000 rw-p 00000000 00:00 0 [heap]\n")
        root.write("stat", "btime 1700000000\n")
        for fd in ["0", "1", "2"] { root.write("self/fd/\(fd)", "") }
        var families: [MetricFamily] = []
        try ProcessCollector(procfs: root.tree, ticksPerSecond: 100, pageSize: 4096).collect(into: &families)
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

