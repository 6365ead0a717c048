/// The two exposition formats the exporter writes.
public enum ExpositionFormat: String, Sendable, CaseIterable {
    /// Prometheus text format 0.0.4: the default, and what every Prometheus version accepts.
    case text004 = "text"
    /// OpenMetrics 1.0.0 text: only when the scraper prefers it (see `ContentNegotiation`).
    case openMetrics100 = "openmetrics"

    /// The exact Content-Type header for a response in this format (what Prometheus sends in Accept and checks in the reply).
    public var contentType: String {
        switch self {
        case .text004: return "text/plain; version=0.0.4; charset=utf-8"
        case .openMetrics100: return "application/openmetrics-text; version=1.0.0; charset=utf-8"
        }
    }
}

/// A reusable output buffer for the encoder: one malloc'd region that grows as needed and is
/// kept across scrapes (`reset()` empties it without freeing). One user at a time: the HTTP layer
/// hands buffers out of a locked pool, so it is `@unchecked Sendable` for that hand-over only.
public final class ExpositionBuffer: @unchecked Sendable {
    fileprivate var base: UnsafeMutablePointer<UInt8>
    fileprivate var capacity: Int
    /// Bytes written so far.
    public fileprivate(set) var count = 0

    public init(capacity: Int = 64 * 1024) {
        self.capacity = max(capacity, 256)
        base = .allocate(capacity: self.capacity)
    }

    deinit { base.deallocate() }

    /// Empties the buffer, keeping its memory.
    public func reset() { count = 0 }

    /// The bytes written, valid until the next write or `reset()`.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: base, count: count))
    }

    /// A copy of the bytes written.
    public var bytes: [UInt8] { Array(UnsafeBufferPointer(start: base, count: count)) }
}

/// Turns families into exposition bytes. Pure: no I/O, no HTTP, no clock. The output depends only
/// on the families (which are already sorted), so equal inputs give equal bytes.
public enum ExpositionEncoder {
    /// Appends the encoding of `families` to `buffer`. Callers keep one buffer per thread and
    /// `reset()` it per scrape, so a steady-state scrape allocates nothing here.
    public static func encode(_ families: [MetricFamily], format: ExpositionFormat, into buffer: ExpositionBuffer) {
        var writer = ByteWriter(base: buffer.base, count: buffer.count, capacity: buffer.capacity)
        for family in families {
            switch format {
            case .text004: writer.writeText004(family)
            case .openMetrics100: writer.writeOpenMetrics(family)
            }
        }
        if format == .openMetrics100 { writer.append("# EOF\n") }
        buffer.base = writer.base
        buffer.capacity = writer.capacity
        buffer.count = writer.count
    }

    /// Appends the encoding of `families` to `out`.
    public static func encode(_ families: [MetricFamily], format: ExpositionFormat, into out: inout [UInt8]) {
        let buffer = ExpositionBuffer(capacity: 16 * 1024)
        encode(families, format: format, into: buffer)
        buffer.withUnsafeBytes { out.append(contentsOf: $0) }
    }

    /// Convenience for tests and one-off callers.
    public static func encode(_ families: [MetricFamily], format: ExpositionFormat) -> [UInt8] {
        var out: [UInt8] = []
        encode(families, format: format, into: &out)
        return out
    }
}

// MARK: - Writer

/// Writes through a raw pointer: Array's generic append paths cost more than the bytes they copy
/// when most appends are a few bytes long.
private struct ByteWriter: TextOutputStream {
    var base: UnsafeMutablePointer<UInt8>
    var count: Int
    var capacity: Int

    @inline(__always) mutating func reserve(_ n: Int) {
        if _slowPath(count + n > capacity) { grow(n) }
    }

    @inline(never) mutating func grow(_ n: Int) {
        let newCapacity = max(capacity * 2, count + n)
        let newBase = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        newBase.update(from: base, count: count)
        base.deallocate()
        base = newBase
        capacity = newCapacity
    }

    @inline(__always) mutating func append(_ byte: UInt8) {
        reserve(1)
        base[count] = byte
        count += 1
    }

    @inline(__always) mutating func append(_ p: UnsafePointer<UInt8>, _ n: Int) {
        reserve(n)
        let dst = UnsafeMutableRawPointer(base + count)
        let src = UnsafeRawPointer(p)
        if n >= 8 && n <= 32 {
            // Most pieces are a few dozen bytes: overlapping 8-byte moves beat a call to memcpy.
            var i = 0
            while i + 8 < n {
                dst.storeBytes(of: src.loadUnaligned(fromByteOffset: i, as: UInt64.self), toByteOffset: i, as: UInt64.self)
                i += 8
            }
            dst.storeBytes(of: src.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self), toByteOffset: n - 8, as: UInt64.self)
        } else if n < 8 {
            var i = 0
            while i < n { base[count + i] = p[i]; i += 1 }
        } else {
            dst.copyMemory(from: src, byteCount: n)
        }
        count += n
    }

    @inline(__always) mutating func append(_ s: StaticString) {
        append(s.utf8Start, s.utf8CodeUnitCount)
    }

    @inline(__always) mutating func append(_ s: String) {
        let done: Void? = s.utf8.withContiguousStorageIfAvailable { buf in
            if let p = buf.baseAddress { append(p, buf.count) }
        }
        if done == nil {
            for b in s.utf8 { append(b) }
        }
    }

    // TextOutputStream: Double.write(to:) hands its digits over as ASCII without making a String.
    mutating func write(_ string: String) { append(string) }
    mutating func _writeASCII(_ buffer: UnsafeBufferPointer<UInt8>) {
        if let p = buffer.baseAddress { append(p, buffer.count) }
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
        // The name is written once per series: take its bytes once per family.
        var name = f.name
        name.withUTF8 { nameBytes in
            f.labelBlob.withUnsafeBufferPointer { blob in
                f.labelOffsets.withUnsafeBufferPointer { offsets in
                    f.metrics.withUnsafeBufferPointer { metrics in
                        writeSamples(name: nameBytes, blob: blob, offsets: offsets, metrics: metrics, openMetrics: openMetrics)
                    }
                }
            }
        }
    }

    private mutating func writeSamples(name: UnsafeBufferPointer<UInt8>, blob: UnsafeBufferPointer<UInt8>,
                                       offsets: UnsafeBufferPointer<Int>, metrics: UnsafeBufferPointer<Metric>,
                                       openMetrics: Bool) {
        let blobBase = blob.baseAddress ?? UnsafePointer(bitPattern: 1)!
        for i in 0..<metrics.count {
            let labels = UnsafeBufferPointer(start: blobBase + offsets[i], count: offsets[i + 1] - offsets[i])
            switch metrics[i].value {
            case .double(let v):
                writeSeriesStart(name, suffix: nil, labels, extra: nil)
                writeDouble(v)
                append(UInt8(ascii: "\n"))
            case .unsigned(let v):
                writeSeriesStart(name, suffix: nil, labels, extra: nil)
                writeUnsigned(v)
                append(UInt8(ascii: "\n"))
            case .histogram(let h):
                for (bound, count) in zip(h.upperBounds, h.cumulativeCounts) {
                    writeSeriesStart(name, suffix: "_bucket", labels, extra: .bound(bound, openMetrics: openMetrics))
                    writeUnsigned(count)
                    append(UInt8(ascii: "\n"))
                }
                writeSeriesStart(name, suffix: "_bucket", labels, extra: .infinity)
                writeUnsigned(h.count)
                append(UInt8(ascii: "\n"))
                writeSeriesStart(name, suffix: "_sum", labels, extra: nil)
                writeDouble(h.sum)
                append(UInt8(ascii: "\n"))
                writeSeriesStart(name, suffix: "_count", labels, extra: nil)
                writeUnsigned(h.count)
                append(UInt8(ascii: "\n"))
            }
        }
    }

    enum ExtraLabel { case bound(Double, openMetrics: Bool), infinity }

    /// Writes `name[suffix]{labels}` and the space before the value; `labels` is the metric's
    /// pre-escaped block without the closing brace.
    @inline(__always)
    mutating func writeSeriesStart(_ name: UnsafeBufferPointer<UInt8>, suffix: StaticString?, _ labels: UnsafeBufferPointer<UInt8>, extra: ExtraLabel?) {
        if let p = name.baseAddress { append(p, name.count) }
        if let suffix { append(suffix) }
        if labels.isEmpty && extra == nil {
            append(UInt8(ascii: " "))
            return
        }
        if let p = labels.baseAddress, !labels.isEmpty {
            append(p, labels.count)
        }
        if let extra {
            append(labels.isEmpty ? "{le=\"" : ",le=\"")
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
        let done: Void? = s.utf8.withContiguousStorageIfAvailable { bytes in
            writeEscaped(bytes, quotes: quotes)
        }
        if done == nil {
            let copy = Array(s.utf8)
            copy.withUnsafeBufferPointer { writeEscaped($0, quotes: quotes) }
        }
    }

    mutating func writeEscaped(_ bytes: UnsafeBufferPointer<UInt8>, quotes: Bool) {
        guard let p = bytes.baseAddress else { return }
        var start = 0
        for i in 0..<bytes.count {
            let b = p[i]
            // Only backslash, line feed and double quote are ever escaped.
            if _fastPath(b != UInt8(ascii: "\\") && b != UInt8(ascii: "\n") && b != UInt8(ascii: "\"")) { continue }
            let replacement: StaticString
            switch b {
            case UInt8(ascii: "\\"): replacement = "\\\\"
            case UInt8(ascii: "\n"): replacement = "\\n"
            default:
                guard quotes else { continue }
                replacement = "\\\""
            }
            if i > start { append(p + start, i - start) }
            append(replacement)
            start = i + 1
        }
        if start < bytes.count { append(p + start, bytes.count - start) }
    }

    // MARK: numbers

    mutating func writeUnsigned(_ value: UInt64) {
        if value < 10 {
            append(UInt8(truncatingIfNeeded: value) &+ 48)
            return
        }
        reserve(20)
        // Count digits, then write them backwards in place.
        var digits = 1
        var probe = value
        while probe >= 10 { probe /= 10; digits += 1 }
        var v = value
        var i = count + digits
        while i > count {
            i -= 1
            let (q, r) = v.quotientAndRemainder(dividingBy: 10)
            base[i] = UInt8(truncatingIfNeeded: r) &+ 48
            v = q
        }
        count += digits
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
        v.write(to: &self)
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
