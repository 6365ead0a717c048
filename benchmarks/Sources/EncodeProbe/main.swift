// A quick timing loop for iterating on the encoder (not a benchmark of record; see ExpositionBenchmarks).
import MetricsExporter
#if canImport(Glibc)
import Glibc
#endif

func now() -> Double { var t = timespec(); clock_gettime(CLOCK_MONOTONIC, &t); return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9 }
var families: [MetricFamily] = []
for f in 0..<50 {
    var metrics: [Metric] = []
    for node in 0..<8 { for type in ["arena", "free", "hugetlb", "other", "file"] {
        if f % 2 == 0 { metrics.append(Metric(["memory_type": type, "node": String(node)], UInt64(f * 1_000_003 + node * 7919))) }
        else { metrics.append(Metric(["memory_type": type, "node": String(node)], Double(f) * 0.001 + Double(node) / 3)) }
    } }
    families.append(try! MetricFamily(name: f % 2 == 0 ? "mcescan_bench_family_\(f)_total" : "mcescan_bench_family_\(f)_ratio", help: "Benchmark family \(f).", type: f % 2 == 0 ? .counter : .gauge, metrics: metrics))
}
families = try! MetricSet(families).families
let buffer = ExpositionBuffer()
for format in [ExpositionFormat.text004, .openMetrics100] {
    var times: [Double] = []
    for _ in 0..<400 {
        buffer.reset()
        let t0 = now()
        ExpositionEncoder.encode(families, format: format, into: buffer)
        times.append(now() - t0)
    }
    times.sort()
    print("\(format): min \(Int(times[0] * 1e6)) us, median \(Int(times[times.count / 2] * 1e6)) us, bytes \(buffer.count)")
}
