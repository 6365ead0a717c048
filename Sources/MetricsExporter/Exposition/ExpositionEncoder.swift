/// The two exposition formats the exporter writes.
public enum ExpositionFormat: String, Sendable, CaseIterable {
    /// Prometheus text format 0.0.4: the default, and what every Prometheus version accepts.
    case text004 = "text"
    /// OpenMetrics 1.0.0 text: only when the scraper prefers it (see `ContentNegotiation`).
    case openMetrics100 = "openmetrics"

    /// The exact Content-Type header for a response in this format (SPEC §6).
    public var contentType: String {
        switch self {
        case .text004: return "text/plain; version=0.0.4; charset=utf-8"
        case .openMetrics100: return "application/openmetrics-text; version=1.0.0; charset=utf-8"
        }
    }
}

/// Turns families into exposition bytes. Pure: no I/O, no HTTP, no clock. The output depends only
/// on the families (which are already sorted), so equal inputs give equal bytes.
public enum ExpositionEncoder {
    /// Appends the encoding of `families` to `out`. Callers reuse `out` across scrapes
    /// (`removeAll(keepingCapacity: true)`) so a steady-state scrape does not grow it.
    public static func encode(_ families: [MetricFamily], format: ExpositionFormat, into out: inout [UInt8]) {
        var writer = ByteWriter(out: out)
        out = []  // hand the storage to the writer without a copy
        for family in families {
            switch format {
            case .text004: writer.writeText004(family)
            case .openMetrics100: writer.writeOpenMetrics(family)
            }
        }
        if format == .openMetrics100 { writer.append("# EOF\n") }
        out = writer.out
    }

    /// Convenience for tests and one-off callers.
    public static func encode(_ families: [MetricFamily], format: ExpositionFormat) -> [UInt8] {
        var out: [UInt8] = []
        encode(families, format: format, into: &out)
        return out
    }
}

// MARK: - Writer

private struct ByteWriter {
    var out: [UInt8]

    @inline(__always) mutating func append(_ byte: UInt8) { out.append(byte) }

    @inline(__always) mutating func append(_ s: StaticString) {
        out.append(contentsOf: UnsafeBufferPointer(start: s.utf8Start, count: s.utf8CodeUnitCount))
    }

    @inline(__always) mutating func append(_ s: String) {
        var s = s
        s.withUTF8 { out.append(contentsOf: $0) }
    }

    // MARK: families

    mutating func writeText004(_ f: MetricFamily) {
        append("# HELP ")
        append(f.name)
        append(UInt8(ascii: " "))
        writeEscaped(f.help, quotes: false)
        append("\n# TYPE ")
        append(f.name)
        switch f.type {
        case .counter: append(" counter\n")
        case .gauge, .info, .stateset: append(" gauge\n")
        case .histogram: append(" histogram\n")
        case .unknown: append(" untyped\n")
        }
        writeSamples(f, openMetrics: false)
    }

    mutating func writeOpenMetrics(_ f: MetricFamily) {
        let family = MetricFamily.openMetricsFamilyName(f.name, f.type)
        append("# HELP ")
        append(family)
        append(UInt8(ascii: " "))
        writeEscaped(f.help, quotes: true)
        append("\n# TYPE ")
        append(family)
        switch f.type {
        case .counter: append(" counter\n")
        case .gauge: append(" gauge\n")
        case .info: append(" info\n")
        case .stateset: append(" stateset\n")
        case .histogram: append(" histogram\n")
        case .unknown: append(" unknown\n")
        }
        if let unit = f.unit {
            append("# UNIT ")
            append(family)
            append(UInt8(ascii: " "))
            append(unit)
            append(UInt8(ascii: "\n"))
        }
        writeSamples(f, openMetrics: true)
    }

    mutating func writeSamples(_ f: MetricFamily, openMetrics: Bool) {
        for metric in f.metrics {
            switch metric.value {
            case .double(let v):
                writeSeriesStart(f.name, suffix: nil, metric.labels, extra: nil)
                writeDouble(v)
                append(UInt8(ascii: "\n"))
            case .unsigned(let v):
                writeSeriesStart(f.name, suffix: nil, metric.labels, extra: nil)
                writeUnsigned(v)
                append(UInt8(ascii: "\n"))
            case .histogram(let h):
                for (bound, count) in zip(h.upperBounds, h.cumulativeCounts) {
                    writeSeriesStart(f.name, suffix: "_bucket", metric.labels, extra: .bound(bound, openMetrics: openMetrics))
                    writeUnsigned(count)
                    append(UInt8(ascii: "\n"))
                }
                writeSeriesStart(f.name, suffix: "_bucket", metric.labels, extra: .infinity)
                writeUnsigned(h.count)
                append(UInt8(ascii: "\n"))
                writeSeriesStart(f.name, suffix: "_sum", metric.labels, extra: nil)
                writeDouble(h.sum)
                append(UInt8(ascii: "\n"))
                writeSeriesStart(f.name, suffix: "_count", metric.labels, extra: nil)
                writeUnsigned(h.count)
                append(UInt8(ascii: "\n"))
            }
        }
    }

    enum ExtraLabel { case bound(Double, openMetrics: Bool), infinity }

    /// Writes `name[suffix]{labels}` and the space before the value.
    @inline(__always)
    mutating func writeSeriesStart(_ name: String, suffix: StaticString?, _ labels: [Label], extra: ExtraLabel?) {
        append(name)
        if let suffix { append(suffix) }
        if labels.isEmpty && extra == nil {
            append(UInt8(ascii: " "))
            return
        }
        append(UInt8(ascii: "{"))
        var first = true
        for label in labels {
            if !first { append(UInt8(ascii: ",")) }
            first = false
            append(label.name)
            append("=\"")
            writeEscaped(label.value, quotes: true)
            append(UInt8(ascii: "\""))
        }
        if let extra {
            if !first { append(UInt8(ascii: ",")) }
            append("le=\"")
            switch extra {
            case .infinity: append("+Inf")
            case .bound(let b, let om): writeBound(b, openMetrics: om)
            }
            append(UInt8(ascii: "\""))
        }
        append("} ")
    }

    // MARK: escaping

    /// Label values (both formats) and OpenMetrics HELP escape `\`, `"` and LF; 0.0.4 HELP
    /// escapes only `\` and LF.
    mutating func writeEscaped(_ s: String, quotes: Bool) {
        var s = s
        s.withUTF8 { bytes in
            var start = 0
            for i in 0..<bytes.count {
                let b = bytes[i]
                let replacement: StaticString
                switch b {
                case UInt8(ascii: "\\"): replacement = "\\\\"
                case UInt8(ascii: "\n"): replacement = "\\n"
                case UInt8(ascii: "\"") where quotes: replacement = "\\\""
                default: continue
                }
                if i > start { out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<i])) }
                append(replacement)
                start = i + 1
            }
            if start < bytes.count { out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start...])) }
        }
    }

    // MARK: numbers

    mutating func writeUnsigned(_ value: UInt64) {
        if value < 10 {
            append(UInt8(truncatingIfNeeded: value) &+ 48)
            return
        }
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { buf in
            var v = value
            var i = 20
            while v > 0 {
                i -= 1
                let (q, r) = v.quotientAndRemainder(dividingBy: 10)
                buf[i] = UInt8(truncatingIfNeeded: r) &+ 48
                v = q
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: buf[i..<20]))
        }
    }

    /// Integral values below 2^53 as plain digits; others as the shortest round-trip decimal
    /// (`0.25`, `1e-05`, `1.5e+20`); `NaN`, `+Inf`, `-Inf` as the formats spell them.
    mutating func writeDouble(_ v: Double) {
        if v.isNaN { append("NaN"); return }
        if v.isInfinite { append(v < 0 ? "-Inf" : "+Inf"); return }
        if v == v.rounded(.towardZero), abs(v) < 9_007_199_254_740_992 {
            if v < 0 { append(UInt8(ascii: "-")) }
            writeUnsigned(UInt64(abs(v)))
            return
        }
        append(v.description)
    }

    /// A bucket bound: Go's `%g` style in 0.0.4 (`1`, `0.005`, `1e+06`); in OpenMetrics the
    /// canonical form with a decimal point (`1.0`, `0.005`, `1e+06`).
    mutating func writeBound(_ b: Double, openMetrics: Bool) {
        if b == b.rounded(.towardZero), abs(b) < 1e6 {
            writeDouble(b)
            if openMetrics { append(".0") }
            return
        }
        var s = b.description  // Swift: shortest round-trip, exponent as "e+06"/"e-05"
        if s.hasSuffix(".0"), abs(b) >= 1e6 {
            // 1000000.0 -> 1e+06 (Go and the OpenMetrics canonical form switch to exponents at 1e6 here).
            s = exponentForm(b)
        }
        append(s)
    }

    private func exponentForm(_ b: Double) -> String {
        var mantissa = abs(b)
        var exp = 0
        while mantissa >= 10 { mantissa /= 10; exp += 1 }
        var m = mantissa.description
        if m.hasSuffix(".0") { m.removeLast(2) }
        let e = exp < 10 ? "0\(exp)" : "\(exp)"
        return (b < 0 ? "-" : "") + m + "e+" + e
    }
}
