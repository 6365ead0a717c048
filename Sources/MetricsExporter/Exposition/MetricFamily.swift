/// The kind of a metric family, as both exposition formats name it.
public enum MetricType: String, Sendable, CaseIterable {
    /// Monotonic count. The family name must end in `_total` (OpenMetrics drops the suffix from
    /// the family name and adds it back on the sample).
    case counter
    /// A value that goes up and down.
    case gauge
    /// Cumulative buckets, `_sum` and `_count`.
    case histogram
    /// OpenMetrics info: a constant 1 whose labels carry facts. The name must end in `_info`;
    /// text 0.0.4 has no info type and shows it as a gauge.
    case info
    /// OpenMetrics state set: one sample per state, 0 or 1, labelled with the family name.
    /// Text 0.0.4 shows it as a gauge.
    case stateset
    /// No type information (`untyped` in 0.0.4, `unknown` in OpenMetrics).
    case unknown
}

/// One label pair.
public struct Label: Sendable, Hashable {
    public var name: String
    public var value: String
    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// Histogram state at one instant: cumulative counts per finite upper bound, plus count and sum.
/// The `+Inf` bucket is implied and always equals `count`.
public struct HistogramValue: Sendable, Equatable {
    /// Finite, strictly ascending upper bounds (`le`), without `+Inf`.
    public var upperBounds: [Double]
    /// Cumulative count of observations `<=` each bound; same length as `upperBounds`.
    public var cumulativeCounts: [UInt64]
    public var count: UInt64
    public var sum: Double

    public init(upperBounds: [Double], cumulativeCounts: [UInt64], count: UInt64, sum: Double) {
        self.upperBounds = upperBounds
        self.cumulativeCounts = cumulativeCounts
        self.count = count
        self.sum = sum
    }
}

/// The value of one series.
public enum SampleValue: Sendable, Equatable {
    /// A floating-point value; `NaN` and the infinities are written as `NaN`, `+Inf`, `-Inf`.
    case double(Double)
    /// An exact unsigned integer (counters kept in atomics), written as plain digits.
    case unsigned(UInt64)
    /// A histogram (only in `.histogram` families).
    case histogram(HistogramValue)
}

/// One series of a family: its labels (without the family name) and its value.
public struct Metric: Sendable, Equatable {
    /// Sorted by name once the family is built.
    public internal(set) var labels: [Label]
    public var value: SampleValue

    public init(labels: [Label] = [], value: SampleValue) {
        self.labels = labels
        self.value = value
    }

    public init(_ labels: KeyValuePairs<String, String>, _ value: Double) {
        self.init(labels: labels.map { Label($0.key, $0.value) }, value: .double(value))
    }

    public init(_ labels: KeyValuePairs<String, String>, _ value: UInt64) {
        self.init(labels: labels.map { Label($0.key, $0.value) }, value: .unsigned(value))
    }
}

/// Why a family or a set of families cannot be exposed. Thrown when families are built, so a
/// programming mistake in a collector becomes a failed collector, never a malformed scrape.
public struct ExpositionError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case invalidMetricName, invalidLabelName, reservedLabelName, duplicateLabelName
        case duplicateSeries, nameClash, typeMismatch, invalidHistogram, invalidValue, invalidUnit
    }
    public var code: Code
    public var message: String
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { "\(code.rawValue): \(message)" }
}

/// A validated, sorted metric family: the unit that collectors produce and the encoder writes.
///
/// The name is the name of the sample as 0.0.4 writes it: counters end in `_total`, info
/// families in `_info`. Series are sorted by label values (numeric values numerically) so the
/// output is deterministic; a repeated label set throws.
public struct MetricFamily: Sendable, Equatable {
    public let name: String
    public let help: String
    public let type: MetricType
    /// OpenMetrics unit (`seconds`, `bytes`); must be a suffix of the family name.
    public let unit: String?
    public let metrics: [Metric]
    /// Every metric's label block, escaped once here so encoding is a copy: `{a="x",b="y"`
    /// (no closing brace, so a histogram can add `le`), empty for a metric without labels.
    /// Label escaping is the same in both formats.
    let labelBlob: [UInt8]
    /// `labelBlob[labelOffsets[i]..<labelOffsets[i+1]]` belongs to `metrics[i]`.
    let labelOffsets: [Int]

    public init(name: String, help: String, type: MetricType, unit: String? = nil, metrics: [Metric]) throws {
        try Self.validateMetricName(name)
        switch type {
        case .counter:
            guard name.hasSuffix("_total"), name.count > 6 else {
                throw ExpositionError(.invalidMetricName, "counter \(name) must end in _total")
            }
        case .info:
            guard name.hasSuffix("_info"), name.count > 5 else {
                throw ExpositionError(.invalidMetricName, "info \(name) must end in _info")
            }
        default:
            if name.hasSuffix("_total") {
                throw ExpositionError(.invalidMetricName, "\(type.rawValue) \(name) must not end in _total")
            }
        }
        if let unit {
            guard !unit.isEmpty, Self.isValidLabelName(unit),
                  Self.openMetricsFamilyName(name, type).hasSuffix("_" + unit) else {
                throw ExpositionError(.invalidUnit, "unit \(unit) is not a suffix of \(name)")
            }
        }
        var sorted = metrics
        for i in sorted.indices {
            try Self.validate(&sorted[i], family: name, type: type)
        }
        sorted.sort { Self.labelsPrecede($0.labels, $1.labels) }
        for i in sorted.indices.dropFirst() where sorted[i - 1].labels == sorted[i].labels {
            let ls = sorted[i].labels.map { "\($0.name)=\"\($0.value)\"" }.joined(separator: ",")
            throw ExpositionError(.duplicateSeries, "\(name){\(ls)} appears twice")
        }
        self.name = name
        self.help = help
        self.type = type
        self.unit = unit
        self.metrics = sorted
        var blob: [UInt8] = []
        var offsets: [Int] = [0]
        offsets.reserveCapacity(sorted.count + 1)
        for metric in sorted {
            for (i, label) in metric.labels.enumerated() {
                blob.append(i == 0 ? UInt8(ascii: "{") : UInt8(ascii: ","))
                blob.append(contentsOf: label.name.utf8)
                blob.append(UInt8(ascii: "="))
                blob.append(UInt8(ascii: "\""))
                for b in label.value.utf8 {
                    switch b {
                    case UInt8(ascii: "\\"): blob.append(UInt8(ascii: "\\")); blob.append(b)
                    case UInt8(ascii: "\""): blob.append(UInt8(ascii: "\\")); blob.append(b)
                    case UInt8(ascii: "\n"): blob.append(UInt8(ascii: "\\")); blob.append(UInt8(ascii: "n"))
                    default: blob.append(b)
                    }
                }
                blob.append(UInt8(ascii: "\""))
            }
            offsets.append(blob.count)
        }
        self.labelBlob = blob
        self.labelOffsets = offsets
    }

    /// The names of the samples this family writes, and its OpenMetrics family name: two
    /// families of one scrape must not share any of them.
    var reservedNames: [String] {
        let om = Self.openMetricsFamilyName(name, type)
        switch type {
        case .histogram: return [name, name + "_bucket", name + "_sum", name + "_count", name + "_created"]
        case .counter: return [name, om, om + "_created"]
        case .info: return [name, om]
        default: return [name]
        }
    }

    static func openMetricsFamilyName(_ name: String, _ type: MetricType) -> String {
        switch type {
        case .counter: return String(name.dropLast(6))
        case .info: return String(name.dropLast(5))
        default: return name
        }
    }

    private static func validate(_ metric: inout Metric, family: String, type: MetricType) throws {
        metric.labels.sort { $0.name < $1.name }
        for (i, label) in metric.labels.enumerated() {
            guard isValidLabelName(label.name) else {
                throw ExpositionError(.invalidLabelName, "\(family): label name \"\(label.name)\" is not [a-zA-Z_][a-zA-Z0-9_]*")
            }
            if label.name.hasPrefix("__") {
                throw ExpositionError(.reservedLabelName, "\(family): label name \(label.name) is reserved (__ prefix)")
            }
            if label.name == "le" || (label.name == "quantile" && type != .unknown) {
                throw ExpositionError(.reservedLabelName, "\(family): label name \(label.name) is reserved")
            }
            if i > 0, metric.labels[i - 1].name == label.name {
                throw ExpositionError(.duplicateLabelName, "\(family): label \(label.name) given twice")
            }
        }
        switch (type, metric.value) {
        case (.histogram, .histogram(let h)):
            try validateHistogram(h, family: family)
        case (.histogram, _):
            throw ExpositionError(.typeMismatch, "\(family): histogram family with a scalar sample")
        case (_, .histogram):
            throw ExpositionError(.typeMismatch, "\(family): \(type.rawValue) family with a histogram sample")
        case (.counter, .double(let v)):
            guard v >= 0 else { throw ExpositionError(.invalidValue, "\(family): counter value \(v) is negative or NaN") }
        case (.info, let v):
            guard v == .double(1) || v == .unsigned(1) else {
                throw ExpositionError(.invalidValue, "\(family): info value must be 1")
            }
        case (.stateset, let v):
            guard v == .double(0) || v == .double(1) || v == .unsigned(0) || v == .unsigned(1) else {
                throw ExpositionError(.invalidValue, "\(family): state set value must be 0 or 1")
            }
            guard metric.labels.contains(where: { $0.name == family }) else {
                throw ExpositionError(.invalidLabelName, "\(family): state set sample needs the label \(family)")
            }
        default:
            break
        }
    }

    private static func validateHistogram(_ h: HistogramValue, family: String) throws {
        guard h.upperBounds.count == h.cumulativeCounts.count else {
            throw ExpositionError(.invalidHistogram, "\(family): \(h.upperBounds.count) bounds but \(h.cumulativeCounts.count) counts")
        }
        for (i, bound) in h.upperBounds.enumerated() {
            guard bound.isFinite else { throw ExpositionError(.invalidHistogram, "\(family): bound \(bound) is not finite (+Inf is implied)") }
            if i > 0 {
                guard bound > h.upperBounds[i - 1] else { throw ExpositionError(.invalidHistogram, "\(family): bounds are not strictly ascending") }
                guard h.cumulativeCounts[i] >= h.cumulativeCounts[i - 1] else { throw ExpositionError(.invalidHistogram, "\(family): bucket counts are not cumulative") }
            }
        }
        guard (h.cumulativeCounts.last ?? 0) <= h.count else {
            throw ExpositionError(.invalidHistogram, "\(family): a bucket holds more than count")
        }
        guard !h.sum.isNaN else { throw ExpositionError(.invalidHistogram, "\(family): sum is NaN") }
    }

    static func validateMetricName(_ name: String) throws {
        var first = true
        for byte in name.utf8 {
            let ok = isAlpha(byte) || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ":") || (!first && isDigit(byte))
            if !ok { throw ExpositionError(.invalidMetricName, "metric name \"\(name)\" is not [a-zA-Z_:][a-zA-Z0-9_:]*") }
            first = false
        }
        if first { throw ExpositionError(.invalidMetricName, "metric name is empty") }
    }

    static func isValidLabelName(_ name: String) -> Bool {
        var first = true
        for byte in name.utf8 {
            guard isAlpha(byte) || byte == UInt8(ascii: "_") || (!first && isDigit(byte)) else { return false }
            first = false
        }
        return !first
    }

    private static func isAlpha(_ b: UInt8) -> Bool { (b | 0x20) >= UInt8(ascii: "a") && (b | 0x20) <= UInt8(ascii: "z") }
    private static func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }

    /// Orders label sets by their values, label by label; values that are both decimal integers
    /// compare numerically (node="2" before node="10").
    static func labelsPrecede(_ a: [Label], _ b: [Label]) -> Bool {
        for (x, y) in zip(a, b) {
            if x.name != y.name { return x.name < y.name }
            if x.value != y.value { return valuePrecedes(x.value, y.value) }
        }
        return a.count < b.count
    }

    private static func valuePrecedes(_ a: String, _ b: String) -> Bool {
        if let x = UInt64(a), let y = UInt64(b), !a.hasPrefix("0") || a == "0", !b.hasPrefix("0") || b == "0" {
            return x < y
        }
        return a < b
    }
}

/// A scrape's worth of families, sorted by name, with no two families writing the same sample
/// name (a gauge `foo_count` beside a histogram `foo` is rejected).
public struct MetricSet: Sendable {
    public private(set) var families: [MetricFamily]

    public init(_ families: [MetricFamily]) throws {
        var owner: [String: String] = [:]
        for family in families {
            for reserved in family.reservedNames {
                if let other = owner[reserved] {
                    throw ExpositionError(.nameClash, "\(family.name) and \(other) both write \(reserved)")
                }
                owner[reserved] = family.name
            }
        }
        self.families = families.sorted { $0.name < $1.name }
    }

    /// Builds the set, dropping (and reporting through `onClash`) any family whose names clash
    /// with a family earlier in `families`. Used on the scrape path, where one bad collector must
    /// not cost the others their series.
    public init(dropping families: [MetricFamily], onClash: (ExpositionError) -> Void) {
        var owner: [String: String] = [:]
        var kept: [MetricFamily] = []
        kept.reserveCapacity(families.count)
        outer: for family in families {
            for reserved in family.reservedNames {
                if let other = owner[reserved] {
                    onClash(ExpositionError(.nameClash, "\(family.name) and \(other) both write \(reserved); \(family.name) dropped"))
                    continue outer
                }
            }
            for reserved in family.reservedNames { owner[reserved] = family.name }
            kept.append(family)
        }
        self.families = kept.sorted { $0.name < $1.name }
    }
}
