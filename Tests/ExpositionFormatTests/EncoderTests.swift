import Testing
@testable import MetricsExporter

/// Families that exercise every rule of both formats: escapes in HELP and label values, empty
/// label values, special floats, exact UInt64 values, histograms with several label sets,
/// info, state set, unknown, units, and numeric-aware series order.
func sampleFamilies() throws -> [MetricFamily] {
    [
        try MetricFamily(
            name: "test_escapes", help: "Backslash \\ newline \n and a \"quote\" in HELP.",
            type: .gauge,
            metrics: [
                Metric(["path": "C:\\dir\\file"], 1.0),
                Metric(["path": "line1\nline2"], 2.0),
                Metric(["path": "say \"hi\""], 3.0),
                Metric(["path": ""], 4.0),
                Metric(["path": "ünïcødé ✓"], 5.0),
                Metric(["path": "tab\there"], 6.0),
            ]),
        try MetricFamily(
            name: "test_special_values", help: "Special floating-point values.",
            type: .gauge,
            metrics: [
                Metric(["case": "nan"], Double.nan),
                Metric(["case": "plus_inf"], Double.infinity),
                Metric(["case": "minus_inf"], -Double.infinity),
                Metric(["case": "negative"], -42.0),
                Metric(["case": "tiny"], 0.00001),
                Metric(["case": "huge"], 1.5e20),
                Metric(["case": "fraction"], 0.25),
                Metric(["case": "negative_zero"], -0.0),
                Metric(["case": "two_pow_53"], 9_007_199_254_740_992.0),
            ]),
        try MetricFamily(
            name: "test_events_total", help: "A counter with exact unsigned values.",
            type: .counter,
            metrics: [
                Metric(["node": "10"], UInt64.max),
                Metric(["node": "2"], UInt64(0)),
                Metric(["node": "1"], UInt64(1234567890123)),
            ]),
        try MetricFamily(
            name: "test_wake_duration_seconds", help: "A histogram.",
            type: .histogram, unit: "seconds",
            metrics: [
                Metric(labels: [Label("node", "1")], value: .histogram(HistogramValue(
                    upperBounds: [0.001, 0.01, 0.1, 1, 2.5, 1_000_000],
                    cumulativeCounts: [0, 3, 7, 9, 9, 10], count: 12, sum: 42.125))),
                Metric(labels: [Label("node", "0")], value: .histogram(HistogramValue(
                    upperBounds: [0.001, 0.01, 0.1, 1, 2.5, 1_000_000],
                    cumulativeCounts: [0, 0, 0, 0, 0, 0], count: 0, sum: 0))),
            ]),
        try MetricFamily(
            name: "test_build_info", help: "An info metric.",
            type: .info,
            metrics: [Metric(["version": "1.2.3", "revision": ""], 1.0)]),
        try MetricFamily(
            name: "test_state", help: "A state set.",
            type: .stateset,
            metrics: [Metric(["test_state": "running"], 1.0), Metric(["test_state": "parked"], 0.0)]),
        try MetricFamily(
            name: "test_untyped", help: "An untyped metric.",
            type: .unknown,
            metrics: [Metric([:], 7.0)]),
        try MetricFamily(
            name: "test_region_bytes", help: "A gauge with a unit.",
            type: .gauge, unit: "bytes",
            metrics: [Metric(["memory_type": "arena", "node": "0"], UInt64(67_108_864))]),
    ]
}

@Suite("Exposition encoder")
struct EncoderTests {
    @Test("whole output equals the golden file", arguments: [ExpositionFormat.text004, .openMetrics100])
    func golden(format: ExpositionFormat) throws {
        let set = try MetricSet(sampleFamilies())
        let bytes = ExpositionEncoder.encode(set.families, format: format)
        let name = format == .text004 ? "sample-0.0.4.txt" : "sample-openmetrics.txt"
        if Golden.updating { Golden.write(name, bytes) }
        let want = try #require(Golden.read(name), "missing golden \(name); run with UPDATE_GOLDEN=1")
        let got = String(decoding: bytes, as: UTF8.self)
        let equal = bytes == want
        #expect(equal, "\(name) differs: \(firstDifference(got, String(decoding: want, as: UTF8.self)))")
    }

    @Test("output does not depend on input order")
    func deterministic() throws {
        let families = try sampleFamilies()
        let reference = ExpositionEncoder.encode(try MetricSet(families).families, format: .text004)
        var rng = SplitMix(seed: 7)
        for _ in 0..<20 {
            var shuffled = families
            shuffled.shuffle(using: &rng)
            let reshuffledSeries = try shuffled.map { f in
                var ms = f.metrics
                ms.shuffle(using: &rng)
                return try MetricFamily(name: f.name, help: f.help, type: f.type, unit: f.unit, metrics: ms)
            }
            #expect(ExpositionEncoder.encode(try MetricSet(reshuffledSeries).families, format: .text004) == reference)
        }
    }

    @Test("the encoder appends to a reused buffer without stale bytes")
    func reuseBuffer() throws {
        let families = try MetricSet(sampleFamilies()).families
        var buffer: [UInt8] = []
        ExpositionEncoder.encode(families, format: .openMetrics100, into: &buffer)
        let first = buffer
        buffer.removeAll(keepingCapacity: true)
        ExpositionEncoder.encode(families, format: .openMetrics100, into: &buffer)
        #expect(buffer == first)
    }

    @Test("text 0.0.4 specifics")
    func textSpecifics() throws {
        let text = String(decoding: ExpositionEncoder.encode(try MetricSet(sampleFamilies()).families, format: .text004), as: UTF8.self)
        #expect(text.hasSuffix("\n"))
        #expect(!text.contains("# EOF"))
        #expect(!text.contains("# UNIT"))
        #expect(text.contains("# TYPE test_events_total counter\n"))
        #expect(text.contains("test_events_total{node=\"10\"} 18446744073709551615\n"))
        #expect(text.contains("# HELP test_escapes Backslash \\\\ newline \\n and a \"quote\" in HELP.\n"))
        #expect(text.contains("test_wake_duration_seconds_bucket{node=\"1\",le=\"+Inf\"} 12\n"))
        #expect(text.contains("test_wake_duration_seconds_count{node=\"1\"} 12\n"))
        #expect(text.contains("le=\"1e+06\""))
        #expect(text.contains("le=\"1\"} 9"))
        #expect(text.contains("# TYPE test_untyped untyped\n"))
    }

    @Test("an empty HELP still writes the HELP line")
    func emptyHelp() throws {
        let f = try MetricFamily(name: "x", help: "", type: .gauge, metrics: [Metric([:], 1.0)])
        #expect(ExpositionEncoder.encode([f], format: .text004) == Array("# HELP x \n# TYPE x gauge\nx 1\n".utf8))
        #expect(ExpositionEncoder.encode([f], format: .openMetrics100) == Array("# HELP x \n# TYPE x gauge\nx 1\n# EOF\n".utf8))
    }

    @Test("OpenMetrics specifics")
    func openMetricsSpecifics() throws {
        let text = String(decoding: ExpositionEncoder.encode(try MetricSet(sampleFamilies()).families, format: .openMetrics100), as: UTF8.self)
        #expect(text.hasSuffix("# EOF\n"))
        #expect(text.contains("# TYPE test_events counter\n"))
        #expect(text.contains("test_events_total{node=\"1\"} 1234567890123\n"))
        #expect(text.contains("# TYPE test_build info\n"))
        #expect(text.contains("test_build_info{revision=\"\",version=\"1.2.3\"} 1\n"))
        #expect(text.contains("# UNIT test_wake_duration_seconds seconds\n"))
        #expect(text.contains("# HELP test_escapes Backslash \\\\ newline \\n and a \\\"quote\\\" in HELP.\n"))
        #expect(text.contains("le=\"1.0\"} 9"))
        #expect(text.contains("# TYPE test_untyped unknown\n"))
    }
}

@Suite("Family validation")
struct ValidationTests {
    struct BadFamily: CustomTestStringConvertible, Sendable {
        var label: String
        var build: @Sendable () throws -> MetricFamily
        var code: ExpositionError.Code
        var testDescription: String { label }
    }

    static let cases: [BadFamily] = [
        BadFamily(label: "metric name starts with a digit", build: { try MetricFamily(name: "2x", help: "", type: .gauge, metrics: []) }, code: .invalidMetricName),
        BadFamily(label: "metric name with a dash", build: { try MetricFamily(name: "a-b", help: "", type: .gauge, metrics: []) }, code: .invalidMetricName),
        BadFamily(label: "empty metric name", build: { try MetricFamily(name: "", help: "", type: .gauge, metrics: []) }, code: .invalidMetricName),
        BadFamily(label: "counter without _total", build: { try MetricFamily(name: "a", help: "", type: .counter, metrics: []) }, code: .invalidMetricName),
        BadFamily(label: "gauge with _total", build: { try MetricFamily(name: "a_total", help: "", type: .gauge, metrics: []) }, code: .invalidMetricName),
        BadFamily(label: "info without _info", build: { try MetricFamily(name: "a", help: "", type: .info, metrics: []) }, code: .invalidMetricName),
        BadFamily(label: "label name with a dot", build: { try MetricFamily(name: "a", help: "", type: .gauge, metrics: [Metric(["a.b": "x"], 1.0)]) }, code: .invalidLabelName),
        BadFamily(label: "reserved __ label", build: { try MetricFamily(name: "a", help: "", type: .gauge, metrics: [Metric(["__name__": "x"], 1.0)]) }, code: .reservedLabelName),
        BadFamily(label: "le on a gauge", build: { try MetricFamily(name: "a", help: "", type: .gauge, metrics: [Metric(["le": "1"], 1.0)]) }, code: .reservedLabelName),
        BadFamily(label: "label given twice", build: { try MetricFamily(name: "a", help: "", type: .gauge, metrics: [Metric(labels: [Label("x", "1"), Label("x", "2")], value: .double(1))]) }, code: .duplicateLabelName),
        BadFamily(label: "duplicate series", build: { try MetricFamily(name: "a", help: "", type: .gauge, metrics: [Metric(["x": "1"], 1.0), Metric(["x": "1"], 2.0)]) }, code: .duplicateSeries),
        BadFamily(label: "duplicate series, labels in another order", build: { try MetricFamily(name: "a", help: "", type: .gauge, metrics: [Metric(["x": "1", "y": "2"], 1.0), Metric(["y": "2", "x": "1"], 2.0)]) }, code: .duplicateSeries),
        BadFamily(label: "negative counter", build: { try MetricFamily(name: "a_total", help: "", type: .counter, metrics: [Metric([:], -1.0)]) }, code: .invalidValue),
        BadFamily(label: "NaN counter", build: { try MetricFamily(name: "a_total", help: "", type: .counter, metrics: [Metric([:], Double.nan)]) }, code: .invalidValue),
        BadFamily(label: "histogram sample in a gauge", build: { try MetricFamily(name: "a", help: "", type: .gauge, metrics: [Metric(value: .histogram(HistogramValue(upperBounds: [], cumulativeCounts: [], count: 0, sum: 0)))]) }, code: .typeMismatch),
        BadFamily(label: "scalar sample in a histogram", build: { try MetricFamily(name: "a", help: "", type: .histogram, metrics: [Metric([:], 1.0)]) }, code: .typeMismatch),
        BadFamily(label: "histogram bounds not ascending", build: { try MetricFamily(name: "a", help: "", type: .histogram, metrics: [Metric(value: .histogram(HistogramValue(upperBounds: [2, 1], cumulativeCounts: [0, 0], count: 0, sum: 0)))]) }, code: .invalidHistogram),
        BadFamily(label: "histogram counts not cumulative", build: { try MetricFamily(name: "a", help: "", type: .histogram, metrics: [Metric(value: .histogram(HistogramValue(upperBounds: [1, 2], cumulativeCounts: [3, 1], count: 3, sum: 0)))]) }, code: .invalidHistogram),
        BadFamily(label: "histogram bucket above count", build: { try MetricFamily(name: "a", help: "", type: .histogram, metrics: [Metric(value: .histogram(HistogramValue(upperBounds: [1], cumulativeCounts: [5], count: 3, sum: 0)))]) }, code: .invalidHistogram),
        BadFamily(label: "histogram with +Inf bound", build: { try MetricFamily(name: "a", help: "", type: .histogram, metrics: [Metric(value: .histogram(HistogramValue(upperBounds: [.infinity], cumulativeCounts: [0], count: 0, sum: 0)))]) }, code: .invalidHistogram),
        BadFamily(label: "histogram with NaN sum", build: { try MetricFamily(name: "a", help: "", type: .histogram, metrics: [Metric(value: .histogram(HistogramValue(upperBounds: [], cumulativeCounts: [], count: 0, sum: .nan)))]) }, code: .invalidHistogram),
        BadFamily(label: "bounds and counts of different length", build: { try MetricFamily(name: "a", help: "", type: .histogram, metrics: [Metric(value: .histogram(HistogramValue(upperBounds: [1], cumulativeCounts: [], count: 0, sum: 0)))]) }, code: .invalidHistogram),
        BadFamily(label: "unit not a suffix", build: { try MetricFamily(name: "a_bytes", help: "", type: .gauge, unit: "seconds", metrics: []) }, code: .invalidUnit),
        BadFamily(label: "info value 2", build: { try MetricFamily(name: "a_info", help: "", type: .info, metrics: [Metric([:], 2.0)]) }, code: .invalidValue),
        BadFamily(label: "state set without its label", build: { try MetricFamily(name: "s", help: "", type: .stateset, metrics: [Metric(["x": "a"], 1.0)]) }, code: .invalidLabelName),
    ]

    @Test("bad families throw, never crash", arguments: cases)
    func rejects(_ bad: BadFamily) {
        #expect { try bad.build() } throws: { error in
            (error as? ExpositionError)?.code == bad.code
        }
    }

    @Test("families whose sample names clash are rejected as a set")
    func clashes() throws {
        let histogram = try MetricFamily(name: "foo", help: "", type: .histogram, metrics: [])
        let gaugeCount = try MetricFamily(name: "foo_count", help: "", type: .gauge, metrics: [])
        #expect(throws: ExpositionError.self) { try MetricSet([histogram, gaugeCount]) }
        let counter = try MetricFamily(name: "bar_total", help: "", type: .counter, metrics: [])
        let gauge = try MetricFamily(name: "bar", help: "", type: .gauge, metrics: [])
        #expect(throws: ExpositionError.self) { try MetricSet([counter, gauge]) }
        let again = try MetricFamily(name: "bar", help: "", type: .gauge, metrics: [])
        #expect(throws: ExpositionError.self) { try MetricSet([gauge, again]) }
    }

    @Test("the scrape path drops only the clashing family")
    func dropping() throws {
        let a = try MetricFamily(name: "x", help: "", type: .gauge, metrics: [Metric([:], 1.0)])
        let b = try MetricFamily(name: "x", help: "", type: .gauge, metrics: [Metric([:], 2.0)])
        let c = try MetricFamily(name: "y", help: "", type: .gauge, metrics: [Metric([:], 3.0)])
        var clashes: [ExpositionError] = []
        let set = MetricSet(dropping: [a, b, c]) { clashes.append($0) }
        #expect(set.families.map(\.name) == ["x", "y"])
        #expect(set.families[0].metrics[0].value == .double(1))
        #expect(clashes.count == 1)
    }
}

/// A small deterministic generator so shuffles are reproducible.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E3779B97F4A7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
        return z ^ (z >> 31)
    }
}
