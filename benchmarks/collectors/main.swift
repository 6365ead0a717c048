// Benchmark of the kernel collectors (not installed; run benchmarks/collectors.sh).
//
//   mcescan-collectors-bench census DIR [RUNS]
//       DIR/{sys,proc} from `scripts/gen-fixtures --bench DIR`. Per run, CPU (getrusage user+sys)
//       of one full hwpoison census, of a plain pread loop over the same PFN ranges in the same
//       chunks (the I/O floor), and of `cat DIR/proc/kpageflags > /dev/null` (RUSAGE_CHILDREN).
//   mcescan-collectors-bench scrape SYSFS PROCFS [ITERATIONS]
//       Wall time of gather + text encoding with every collector on (process, memory_failure,
//       hwpoison from a finished census, edac_scrub), against the same with only the process
//       collector (the reference), medians over ITERATIONS.
import HostFS
import Logging
import MetricsExporter

#if canImport(Glibc)
import Glibc
#endif

func cpuSeconds(_ who: Int32) -> Double {
    var usage = rusage()
    getrusage(__rusage_who_t(who), &usage)
    return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
        + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
}

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

func fmt(_ x: Double, _ digits: Int = 3) -> String {
    var p = 1.0
    for _ in 0..<digits { p *= 10 }
    let r = (x * p).rounded() / p
    return "\(r)"
}

func die(_ message: String) -> Never {
    FileHandleStderr.write("mcescan-collectors-bench: \(message)\n")
    exit(2)
}

enum FileHandleStderr {
    static func write(_ s: String) {
        var s = s
        s.withUTF8 { _ = Glibc.write(2, $0.baseAddress, $0.count) }
    }
}

let logger = Logger(label: "bench") { _ in SwiftLogNoOpLogHandler() }
let args = CommandLine.arguments

/// The I/O floor: the same PFN ranges and chunk size as the census, no classification.
func rawRead(sysfs: SysFS, procfs: ProcFS) -> UInt64 {
    guard let layout = try? MemoryBlockLayout.read(sysfs: sysfs), let ranges = try? layout.pfnRanges(pageSize: 4096) else {
        die("cannot read the memory-block layout")
    }
    let fd = open(procfs.path("kpageflags"), O_RDONLY)
    if fd < 0 { die("cannot open kpageflags") }
    defer { close(fd) }
    let chunk = HwpoisonCensus.defaultChunkEntries
    var buf = [UInt64](repeating: 0, count: chunk)
    var sum: UInt64 = 0
    for (_, nodeRanges) in ranges {
        for r in nodeRanges {
            var pfn = r.lowerBound
            while pfn < r.upperBound {
                let want = Int(min(UInt64(chunk), r.upperBound - pfn))
                let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, want * 8, off_t(pfn * 8)) }
                if n <= 0 { break }
                sum &+= buf[0]
                pfn += UInt64(n / 8)
            }
        }
    }
    return sum
}

func censusBenchmark(dir: String, runs: Int) {
    let sysfs = SysFS(root: dir + "/sys")
    let procfs = ProcFS(root: dir + "/proc")
    let census = HwpoisonCensus(sysfs: sysfs, procfs: procfs, pageSize: 4096, logger: logger)
    guard case .complete(let warm) = census.runOnce() else { die("census of \(dir) did not complete") }
    let entries = warm.nodes.reduce(0) { $0 + $1.counts.examined }
    let poisoned = warm.nodes.reduce(0) { $0 + $1.counts.poisoned }
    _ = rawRead(sysfs: sysfs, procfs: procfs)  // warm the page cache
    var censusCPU: [Double] = [], censusWall: [Double] = [], rawCPU: [Double] = [], catCPU: [Double] = []
    for _ in 0..<runs {
        var c0 = cpuSeconds(RUSAGE_SELF.rawValue)
        let w0 = now()
        guard case .complete = census.runOnce() else { die("census failed") }
        censusWall.append(now() - w0)
        censusCPU.append(cpuSeconds(RUSAGE_SELF.rawValue) - c0)
        c0 = cpuSeconds(RUSAGE_SELF.rawValue)
        _ = rawRead(sysfs: sysfs, procfs: procfs)
        rawCPU.append(cpuSeconds(RUSAGE_SELF.rawValue) - c0)
        c0 = cpuSeconds(RUSAGE_CHILDREN.rawValue)
        if system("cat '\(procfs.path("kpageflags"))' > /dev/null") != 0 { die("cat failed") }
        catCPU.append(cpuSeconds(RUSAGE_CHILDREN.rawValue) - c0)
    }
    print("census: \(entries) entries (\((entries * 4096) >> 30) GiB of 4 KiB pages), \(poisoned) poisoned, \(runs) runs")
    print("  census CPU median \(fmt(median(censusCPU))) s (min \(fmt(censusCPU.min()!)), max \(fmt(censusCPU.max()!))), wall median \(fmt(median(censusWall))) s")
    print("  reference pread loop CPU median \(fmt(median(rawCPU))) s; cat CPU median \(fmt(median(catCPU))) s")
    print("  ratio census/pread \(fmt(median(censusCPU) / max(median(rawCPU), 1e-6), 2)), census/cat \(fmt(median(censusCPU) / max(median(catCPU), 1e-6), 2))")
    print("  budget: census CPU < 1 s: \(median(censusCPU) < 1 ? "PASS" : "FAIL")")
}

func scrapeBenchmark(sysfs: SysFS, procfs: ProcFS, iterations: Int) {
    let census = HwpoisonCensus(sysfs: sysfs, procfs: procfs, logger: logger)
    census.runOnce()
    let all = MetricsRegistry(collectors: [
        ProcessCollector(procfs: procfs), MemoryFailureCollector(sysfs: sysfs, logger: logger),
        HwpoisonCollector(census: census), EdacScrubCollector(sysfs: sysfs),
    ], logger: logger)
    let reference = MetricsRegistry(collectors: [ProcessCollector(procfs: procfs)], logger: logger)
    var out: [UInt8] = []
    func time(_ registry: MetricsRegistry) -> Double {
        let t0 = now()
        let set = registry.gather()
        out.removeAll(keepingCapacity: true)
        ExpositionEncoder.encode(set.families, format: .text004, into: &out)
        return now() - t0
    }
    for _ in 0..<50 { _ = time(all); _ = time(reference) }
    var allTimes: [Double] = [], refTimes: [Double] = []
    for _ in 0..<iterations {
        allTimes.append(time(all))
        refTimes.append(time(reference))
    }
    let series = all.gather().families.reduce(0) { $0 + $1.metrics.count }
    print("scrape (\(sysfs.root), \(procfs.root)): \(series) series, \(iterations) iterations")
    print("  all collectors median \(fmt(median(allTimes) * 1000, 3)) ms (p90 \(fmt(allTimes.sorted()[iterations * 9 / 10] * 1000, 3)) ms)")
    print("  reference (process only) median \(fmt(median(refTimes) * 1000, 3)) ms; ratio \(fmt(median(allTimes) / median(refTimes), 2))")
    print("  budget: median < 2 ms: \(median(allTimes) < 0.002 ? "PASS" : "FAIL")")
    // Where the time goes: each collector's own duration series, median over more gathers.
    var perCollector: [String: [Double]] = [:]
    for _ in 0..<min(iterations, 500) {
        let family = all.gather().families.first { $0.name == "mcescan_scrape_collector_duration_seconds" }
        for m in family?.metrics ?? [] {
            if case .double(let v) = m.value { perCollector[m.labels[0].value, default: []].append(v) }
        }
    }
    print("  per collector median: " + perCollector.keys.sorted().map { "\($0) \(fmt(median(perCollector[$0]!) * 1000, 3)) ms" }.joined(separator: ", "))
}

switch args.dropFirst().first {
case "census":
    guard args.count >= 3 else { die("usage: census DIR [RUNS]") }
    let runs = args.count > 3 ? Int(args[3]) ?? 0 : 5
    guard runs > 0 else { die("RUNS must be a positive integer") }
    censusBenchmark(dir: args[2], runs: runs)
case "scrape":
    guard args.count >= 4 else { die("usage: scrape SYSFS PROCFS [ITERATIONS]") }
    let n = args.count > 4 ? Int(args[4]) ?? 0 : 2000
    guard n >= 10 else { die("ITERATIONS must be at least 10") }
    scrapeBenchmark(sysfs: SysFS(root: args[2]), procfs: ProcFS(root: args[3]), iterations: n)
default:
    die("usage: mcescan-collectors-bench census DIR [RUNS] | scrape SYSFS PROCFS [ITERATIONS]")
}
