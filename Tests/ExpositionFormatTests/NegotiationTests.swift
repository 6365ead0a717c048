import Testing
@testable import MetricsExporter

@Suite("Content negotiation")
struct NegotiationTests {
    struct AcceptCase: CustomTestStringConvertible, Sendable {
        var label: String
        var accept: String?
        var want: ExpositionFormat
        var testDescription: String { label }
    }

    static let acceptCases: [AcceptCase] = [
        // What real scrapers send (prometheus-format.md §3).
        AcceptCase(label: "Prometheus 2.42",
                   accept: "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
                   want: .openMetrics100),
        AcceptCase(label: "Prometheus 3.0-3.3",
                   accept: "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;escaping=allow-utf-8;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;escaping=allow-utf-8;q=0.3,*/*;q=0.2",
                   want: .openMetrics100),
        AcceptCase(label: "Prometheus 3.4+",
                   accept: "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
                   want: .openMetrics100),
        AcceptCase(label: "Prometheus 3.x with fallback_scrape_protocol PrometheusText0.0.4 first",
                   accept: "text/plain;version=0.0.4;q=0.6,application/openmetrics-text;version=1.0.0;q=0.5,*/*;q=0.2",
                   want: .text004),
        AcceptCase(label: "Prometheus proto-first (native histograms): protobuf is not served",
                   accept: "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6,application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
                   want: .openMetrics100),
        AcceptCase(label: "no header", accept: nil, want: .text004),
        AcceptCase(label: "empty header", accept: "", want: .text004),
        AcceptCase(label: "curl default */*", accept: "*/*", want: .text004),
        AcceptCase(label: "browser", accept: "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", want: .text004),
        AcceptCase(label: "plain text", accept: "text/plain", want: .text004),
        AcceptCase(label: "OpenMetrics without version", accept: "application/openmetrics-text", want: .openMetrics100),
        AcceptCase(label: "OpenMetrics 1.0.0 only", accept: "application/openmetrics-text; version=1.0.0", want: .openMetrics100),
        AcceptCase(label: "OpenMetrics 0.0.1 only (not served)", accept: "application/openmetrics-text;version=0.0.1", want: .text004),
        AcceptCase(label: "OpenMetrics refused with q=0", accept: "application/openmetrics-text;q=0,text/plain;q=0.1", want: .text004),
        AcceptCase(label: "equal quality prefers 0.0.4", accept: "application/openmetrics-text;q=0.5,text/plain;q=0.5", want: .text004),
        AcceptCase(label: "text preferred", accept: "text/plain;version=0.0.4,application/openmetrics-text;version=1.0.0;q=0.9", want: .text004),
        AcceptCase(label: "text 1.0.0 is not 0.0.4", accept: "text/plain;version=1.0.0,application/openmetrics-text;q=0.5", want: .openMetrics100),
        AcceptCase(label: "application wildcard", accept: "application/*;q=0.9,text/plain;q=0.5", want: .openMetrics100),
        AcceptCase(label: "specific beats wildcard", accept: "*/*;q=1,text/plain;q=0.1", want: .openMetrics100),
        AcceptCase(label: "case-insensitive types", accept: "Application/OpenMetrics-Text;Version=1.0.0", want: .openMetrics100),
        AcceptCase(label: "spaces around parameters", accept: "application/openmetrics-text ; version = 1.0.0 ; q = 0.9 , text/plain ; q = 0.2", want: .openMetrics100),
        AcceptCase(label: "quoted parameter", accept: "application/openmetrics-text;version=\"1.0.0\"", want: .openMetrics100),
        AcceptCase(label: "invalid q drops the range", accept: "application/openmetrics-text;q=2,text/plain;q=0.5", want: .text004),
        AcceptCase(label: "garbage", accept: ";;;,,,/,a/", want: .text004),
        AcceptCase(label: "unsupported only", accept: "application/json", want: .text004),
    ]

    @Test("Accept header chooses the format", arguments: acceptCases)
    func accept(_ c: AcceptCase) {
        #expect(ContentNegotiation.format(accept: c.accept) == c.want)
    }

    @Test("Accept-Encoding allows gzip", arguments: [
        ("gzip", true), ("gzip, deflate, br", true), ("identity", false), (nil, false), ("", false),
        ("*", true), ("*;q=0", false), ("gzip;q=0", false), ("gzip;q=0, *", false), ("br;q=1, *;q=0.1", true),
        ("GZIP", true), ("x-gzip", true), ("deflate", false), ("gzip;q=0.001", true),
    ] as [(String?, Bool)])
    func gzip(_ header: String?, _ want: Bool) {
        #expect(ContentNegotiation.acceptsGzip(header) == want)
    }

    @Test("Content-Type strings are exact")
    func contentTypes() {
        #expect(ExpositionFormat.text004.contentType == "text/plain; version=0.0.4; charset=utf-8")
        #expect(ExpositionFormat.openMetrics100.contentType == "application/openmetrics-text; version=1.0.0; charset=utf-8")
    }
}

@Suite("gzip")
struct GzipTests {
    @Test("round trip", arguments: [0, 1, 100, 65_536, 1_000_003])
    func roundTrip(size: Int) {
        var rng = SplitMix(seed: UInt64(size))
        let input = (0..<size).map { i in i % 7 == 0 ? UInt8.random(in: 0...255, using: &rng) : UInt8(ascii: "a") &+ UInt8(i % 13) }
        let compressed = Gzip.compress(input)
        #expect(compressed != nil)
        #expect(compressed.map { Array($0.prefix(2)) } == [0x1f, 0x8b])
        #expect(Gzip.decompress(compressed ?? []) == input)
    }

    @Test("an encoded scrape round-trips")
    func scrape() throws {
        let bytes = ExpositionEncoder.encode(try MetricSet(sampleFamilies()).families, format: .text004)
        let compressed = try #require(Gzip.compress(bytes))
        #expect(compressed.count < bytes.count)
        #expect(Gzip.decompress(compressed) == bytes)
    }

    @Test("not gzip is rejected")
    func garbage() {
        #expect(Gzip.decompress([1, 2, 3, 4]) == nil)
        #expect(Gzip.decompress([]) == nil)
    }
}
