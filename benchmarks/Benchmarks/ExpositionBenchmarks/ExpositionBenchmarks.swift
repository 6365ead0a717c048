import Benchmark
import MetricsExporter

/// 2,000 series shaped like the exporter's own: 50 families × 40 series, two labels each
/// (node × memory_type), counters with exact UInt64 values and gauges with fractional values.
func makeFamilies() -> [MetricFamily] {
    var families: [MetricFamily] = []
    for f in 0..<50 {
        var metrics: [Metric] = []
        for node in 0..<8 {
            for type in ["arena", "free", "hugetlb", "other", "file"] {
                if f % 2 == 0 {
                    metrics.append(Metric(["memory_type": type, "node": String(node)], UInt64(f * 1_000_003 + node * 7919)))
                } else {
                    metrics.append(Metric(["memory_type": type, "node": String(node)], Double(f) * 0.001 + Double(node) / 3))
                }
            }
        }
        let name = f % 2 == 0 ? "mcescan_bench_family_\(f)_total" : "mcescan_bench_family_\(f)_ratio"
        families.append(try! MetricFamily(name: name, help: "Benchmark family \(f) with a help text of ordinary length.",
                                          type: f % 2 == 0 ? .counter : .gauge, metrics: metrics))
    }
    return try! MetricSet(families).families
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .cpuTotal, .mallocCountTotal, .throughput],
        timeUnits: .microseconds,
        warmupIterations: 50,
        maxDuration: .seconds(3),
        maxIterations: 20_000)

    let families = makeFamilies()
    let seriesCount = families.reduce(0) { $0 + $1.metrics.count }
    precondition(seriesCount == 2_000)
    let reference = ExpositionEncoder.encode(families, format: .text004)

    // Reference measured in the same run: copying the finished 0.0.4 output into a reused buffer.
    // No encoder can beat this; the ratio encode/copy says how far from a plain copy encoding is.
    Benchmark("reference: copy 2000-series output") { benchmark in
        var buffer: [UInt8] = []
        buffer.reserveCapacity(reference.count)
        for _ in benchmark.scaledIterations {
            buffer.removeAll(keepingCapacity: true)
            buffer.append(contentsOf: reference)
            blackHole(buffer)
        }
    }

    // The scrape path: a reused buffer, reset per scrape.
    Benchmark("encode 2000 series, text 0.0.4") { benchmark in
        let buffer = ExpositionBuffer()
        for _ in benchmark.scaledIterations {
            buffer.reset()
            ExpositionEncoder.encode(families, format: .text004, into: buffer)
            blackHole(buffer.count)
        }
    }

    Benchmark("encode 2000 series, OpenMetrics") { benchmark in
        let buffer = ExpositionBuffer()
        for _ in benchmark.scaledIterations {
            buffer.reset()
            ExpositionEncoder.encode(families, format: .openMetrics100, into: buffer)
            blackHole(buffer.count)
        }
    }

    // Honest total: building the 2,000 validated, sorted families (what collectors do per
    // scrape, label escaping included) plus encoding them.
    Benchmark("build families + encode 2000 series, text 0.0.4") { benchmark in
        let buffer = ExpositionBuffer()
        for _ in benchmark.scaledIterations {
            buffer.reset()
            ExpositionEncoder.encode(makeFamilies(), format: .text004, into: buffer)
            blackHole(buffer.count)
        }
    }

    Benchmark("gzip 2000-series output") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(Gzip.compress(reference))
        }
    }
}
