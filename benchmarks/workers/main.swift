// Worker benchmarks (issue 3): CPU per GiB verified at the default knobs, CPU of parked and
// sleeping workers, and knob-change-to-wake latency. Run through benchmarks/worker-bench.sh.
//
// Every figure is measured in this run. References for CPU per GiB, on this thread, same run:
// - a plain vectorized read of the same amount of memory (mcescan_read_reference);
// - the floor of each memory type's pass, the memory work SPEC §4 prescribes without the
//   scanner's own code: arena = a plain read of the bytes plus a plain non-temporal fill of them
//   (an arena pass reads every line, then rewrites it with non-temporal stores); free = the
//   kernel handing over fresh 2 MiB-aligned THP pages (mmap, MADV_POPULATE_WRITE: it zeroes them),
//   a non-temporal fill, a plain read, munmap (a free chunk is taken, filled, verified, released);
//   and the floor of the measured mix, weighted by the bytes each type verified.
import HostFS
import CScanKernel
import Glibc
import ScanWorkers

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func threadCPU() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// On-CPU nanoseconds of every thread of this process at nice 19 (the scan workers), from
/// /proc/self/task/*/schedstat (first field).
func workerThreadsOnCPU() -> UInt64 {
    let proc = ProcFS(root: "/proc")
    var total: UInt64 = 0
    for task in (try? proc.list("self/task")) ?? [] {
        guard let stat = try? proc.readString("self/task/\(task)/stat"), let close = stat.lastIndex(of: ")") else { continue }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 16, fields[16] == "19" else { continue }
        if let sched = try? proc.readString("self/task/\(task)/schedstat"),
           let first = sched.split(separator: " ").first, let ns = UInt64(first) {
            total += ns
        }
    }
    return total
}

func waitUntil(_ seconds: Double = 60, _ cond: () -> Bool) {
    let end = now() + seconds
    while !cond() {
        if now() > end { print("benchmark: timed out waiting"); exit(1) }
        usleep(200)
    }
}

/// `x` with `d` decimals (no Foundation).
func f(_ x: Double, _ d: Int = 3) -> String {
    var scale = 1.0
    for _ in 0..<d { scale *= 10 }
    let v = (x * scale).rounded() / scale
    var s = String(v)
    if let dot = s.firstIndex(of: ".") {
        let decimals = s.distance(from: dot, to: s.endIndex) - 1
        if decimals < d { s += String(repeating: "0", count: d - decimals) }
    }
    return s
}

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

func percentile(_ xs: [Double], _ p: Double) -> Double {
    let s = xs.sorted()
    return s[min(s.count - 1, Int((Double(s.count - 1) * p).rounded()))]
}

var args = CommandLine.arguments.dropFirst()
var gibTarget = 2.0
var latencySamples = 50
var typeMask = -1   // default: the --scan.type default
var skipIdle = false
while let a = args.popFirst() {
    switch a {
    case "--gib": gibTarget = Double(args.popFirst() ?? "") ?? gibTarget
    case "--samples": latencySamples = Int(args.popFirst() ?? "") ?? latencySamples
    case "--type": typeMask = (try? ScanConfig.parseType(args.popFirst() ?? "")) ?? -1
    case "--cpu-only": skipIdle = true
    default: print("usage: mcescan-worker-bench [--gib N] [--samples N] [--type TYPES] [--cpu-only]"); exit(2)
    }
}

let sysfs = SysFS(root: "/sys"), procfs = ProcFS(root: "/proc")
guard let topology = Topology.fromLibnuma() ?? (try? Topology.read(sysfs: sysfs)) else { print("no topology"); exit(1) }
let node0 = topology.nodes[0].id
let dir = "/tmp/mcescan-worker-bench-\(getpid())"
mkdir(dir, 0o700)

func engine(_ config: ScanConfig) throws -> ScanEngine {
    let settings = WorkerSettings(memoryGuard: MemoryGuard(sysfs: sysfs, procfs: procfs))
    return try ScanEngine(configuration: EngineConfiguration(nodes: [node0], initial: config, worker: settings),
                          topology: topology, binder: LibNUMABinder(topology: topology), procfs: procfs,
                          events: try EventLog(directory: dir))
}

print("kernel variant: \(String(cString: mcescan_kernel_variant()))")

// 1. CPU per GiB verified: default pages_to_scan (4096) and type (arena,free), default 64 MiB arena;
//    the sleep is shortened to 20 ms so a few GiB pass in seconds (the sleep costs no CPU; see 2).
do {
    let defaults = try ScanConfig()
    let type = typeMask >= 0 ? typeMask : defaults.type
    print("cpu_per_gib config: pages_to_scan \(defaults.pagesToScan), type \(ScanConfig.typeNames(type).joined(separator: ",")), arena \(WorkerSettings.defaultArenaBytes >> 20) MiB, sleep 20 ms")
    let e = try engine(try ScanConfig(pagesToScan: defaults.pagesToScan, sleepMillis: 20, type: type))
    try e.start()
    let h = e.nodes[0]
    let bytes = { MemoryType.allCases.reduce(UInt64(0)) { $0 + h.counters.type($1).scannedBytes.load(ordering: .relaxed) } }
    // Skip the first full scan (arena allocation, mlock and first fill are one-off costs).
    waitUntil { h.counters.fullScans.load(ordering: .relaxed) >= 1 }
    let typeBytes = { (t: MemoryType) in h.counters.type(t).scannedBytes.load(ordering: .relaxed) }
    let b0 = bytes(), c0 = h.counters.cpuNanos.load(ordering: .relaxed), s0 = workerThreadsOnCPU()
    let a0 = typeBytes(.arena), f0 = typeBytes(.free) + typeBytes(.hugetlb)
    let target = UInt64(gibTarget * Double(1 << 30))
    waitUntil(600) { bytes() - b0 >= target }
    let b1 = bytes(), c1 = h.counters.cpuNanos.load(ordering: .relaxed), s1 = workerThreadsOnCPU()
    let arenaGiB = Double(typeBytes(.arena) - a0) / Double(1 << 30)
    let freeGiB = Double(typeBytes(.free) + typeBytes(.hugetlb) - f0) / Double(1 << 30)
    e.stop()
    let gib = Double(b1 - b0) / Double(1 << 30)
    let workerCPU = Double(c1 - c0) / 1e9
    let schedCPU = Double(s1 - s0) / 1e9
    // Reference: plain vectorized read of the same number of bytes over a 64 MiB buffer, this thread.
    let size = 64 << 20
    let buf = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 4096)
    memset(buf, 0x5a, size)
    var sink: UInt64 = 0
    let r0 = threadCPU()
    var done = 0.0
    while done < Double(b1 - b0) {
        sink &+= mcescan_read_reference(buf, size)
        done += Double(size)
    }
    let refCPU = threadCPU() - r0
    let perGiB = workerCPU / gib, refPerGiB = refCPU / (done / Double(1 << 30))
    // Arena floor: read, then non-temporal fill, of the same bytes, 16 MiB at a time over 64 MiB (as
    // the worker does at 4096 pages per wake over the default arena).
    let step = 16 << 20
    let w0 = threadCPU()
    var rewritten = 0.0, off = 0
    while rewritten < Double(b1 - b0) {
        sink &+= mcescan_read_reference(buf + off, step)
        mcescan_fill(buf + off, step, 0x5eed, 0)
        off = (off + step) % size
        rewritten += Double(step)
    }
    let arenaFloor = (threadCPU() - w0) / (rewritten / Double(1 << 30))
    buf.deallocate()
    // Free floor: 16 MiB chunks of fresh THP memory: mmap, MADV_HUGEPAGE, MADV_POPULATE_WRITE (the
    // kernel zeroes the pages), fill, read, munmap. The populate part is reported on its own.
    let align = 2 << 20
    var populateCPU = 0.0, freeCPU = 0.0, taken = 0.0
    while taken < max(Double(b1 - b0) / 4, Double(256 << 20)) {
        let t0 = threadCPU()
        guard let raw = mmap(nil, step + align, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0),
              raw != MAP_FAILED else { print("benchmark: mmap failed"); exit(1) }
        let p = UnsafeMutableRawPointer(bitPattern: (UInt(bitPattern: raw) + UInt(align - 1)) & ~UInt(align - 1))!
        madvise(p, step, 14 /* MADV_HUGEPAGE */)
        let t1 = threadCPU()
        if madvise(p, step, 23 /* MADV_POPULATE_WRITE */) != 0 { print("benchmark: MADV_POPULATE_WRITE failed: errno \(errno)"); exit(1) }
        let t2 = threadCPU()
        mcescan_fill(p, step, 0x1234, 0)
        sink &+= mcescan_read_reference(p, step)
        munmap(raw, step + align)
        let t3 = threadCPU()
        populateCPU += t2 - t1
        freeCPU += t3 - t0
        taken += Double(step)
    }
    let freeFloor = freeCPU / (taken / Double(1 << 30)), populateFloor = populateCPU / (taken / Double(1 << 30))
    let mixFloor = (arenaGiB * arenaFloor + freeGiB * freeFloor) / max(arenaGiB + freeGiB, 1e-9)
    print("cpu_per_gib: verified \(f(gib, 2)) GiB, worker CPU \(f(workerCPU)) s (counter) / \(f(schedCPU)) s (schedstat) -> \(f(perGiB, 4)) CPU-s/GiB; reference plain read \(f(refPerGiB, 4)) CPU-s/GiB; ratio \(f(perGiB / refPerGiB, 2)) (sink \(sink & 1))")
    print("cpu_per_gib_floor: arena (read + non-temporal fill) \(f(arenaFloor, 4)); free (kernel populate \(f(populateFloor, 4)) + fill + read + munmap) \(f(freeFloor, 4)); this mix (arena \(f(arenaGiB, 2)) GiB, free \(f(freeGiB, 2)) GiB) \(f(mixFloor, 4)) CPU-s/GiB; worker/floor \(f(perGiB / mixFloor, 2))")
    print("cpu_per_gib_ok: \(perGiB <= 0.10)")
}

if skipIdle { exit(0) }

// 2. No CPU when parked or sleeping (no polling): on-CPU time of the worker thread over 5 s.
for (label, config) in [("parked", try ScanConfig(pagesToScan: 0, sleepMillis: 10, type: 3)),
                        ("sleeping", try ScanConfig(pagesToScan: 16, sleepMillis: 10_000, type: 1))] {
    let e = try engine(config)
    try e.start()
    let h = e.nodes[0]
    if label == "parked" { waitUntil { h.counters.workerState == .parked } } else { waitUntil { h.counters.wakeups.load(ordering: .relaxed) >= 1 } }
    usleep(200_000)
    let s0 = workerThreadsOnCPU()
    usleep(5_000_000)
    let s1 = workerThreadsOnCPU()
    e.stop()
    print("idle_\(label): worker on-CPU \(s1 - s0) ns over 5 s")
}

// 3. Knob change to wake, worker sleeping 10 s: time from update() returning... to the wake's end
//    (wakeups increments when the 16-page wake is done), and from trigger().
do {
    let e = try engine(try ScanConfig(pagesToScan: 16, sleepMillis: 10_000, type: 1))
    try e.start()
    let h = e.nodes[0]
    waitUntil { h.counters.wakeups.load(ordering: .relaxed) >= 1 }
    var change: [Double] = [], trigger: [Double] = []
    for i in 0..<latencySamples {
        for useTrigger in [false, true] {
            let k = h.counters.wakeups.load(ordering: .relaxed)
            usleep(UInt32(5_000 + (i * 7919) % 20_000))   // let the worker fall asleep
            let t0 = now()
            if useTrigger { h.trigger() } else { try h.control.update(pagesToScan: 16 + (i & 1)) }
            waitUntil { h.counters.wakeups.load(ordering: .relaxed) > k }
            let dt = (now() - t0) * 1000
            if useTrigger { trigger.append(dt) } else { change.append(dt) }
        }
    }
    e.stop()
    print("wake_latency_knob_ms: n=\(change.count) median \(f(median(change))) p90 \(f(percentile(change, 0.9))) max \(f(change.max()!))")
    print("wake_latency_trigger_ms: n=\(trigger.count) median \(f(median(trigger))) p90 \(f(percentile(trigger, 0.9))) max \(f(trigger.max()!))")
    print("wake_latency_ok: \(median(change) < 10)")
}
