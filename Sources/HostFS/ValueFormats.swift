// The value formats of flags and API fields, one parser each: sizes (`64MiB`), durations
// (`1h30m`), and, in KernelLists.swift, node lists (`0,2-3`). Each caller checks its own range
// and puts its flag or field name in front of the message.

/// A value that is not in its format; the message says what the format is, with an example.
public struct ValueFormatError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    /// The value is in the format but does not fit the type (a size past `Int.max`): callers
    /// report it as out of their range rather than as malformed.
    public var tooLarge: Bool
    public init(_ message: String, tooLarge: Bool = false) {
        self.message = message
        self.tooLarge = tooLarge
    }
    public var description: String { message }
}

/// Bytes of a size: a whole number with an optional binary suffix `B`, `KiB`, `MiB`, `GiB` or
/// `TiB` (`64MiB`, `4096`, `1GiB`); surrounding spaces are ignored.
public func parseSize(_ text: String) throws(ValueFormatError) -> Int {
    let t = text.trimmingCharacters(in: " ")
    let units: [(String, Int)] = [("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10), ("B", 1)]
    var digits = Substring(t)
    var factor = 1
    for (suffix, f) in units where t.hasSuffix(suffix) {
        digits = t.dropLast(suffix.count)
        factor = f
        break
    }
    guard let n = Int(digits), n >= 0 else {
        throw ValueFormatError("\"\(text)\" is not a size (a number with an optional B, KiB, MiB, GiB or TiB suffix, e.g. 64MiB)")
    }
    let (bytes, overflow) = n.multipliedReportingOverflow(by: factor)
    guard !overflow else { throw ValueFormatError("\(text) is too large", tooLarge: true) }
    return bytes
}

/// Seconds of a Prometheus duration: one or more `<integer><unit>` terms, units `ms s m h d w y`,
/// largest first, each unit at most once (`1h30m`, `90s`, `5m`); surrounding spaces are ignored.
public func parseDuration(_ text: String) throws(ValueFormatError) -> Double {
    let units: [(String, Double)] = [("y", 365 * 86400), ("w", 7 * 86400), ("d", 86400), ("h", 3600),
                                     ("m", 60), ("s", 1), ("ms", 0.001)]
    let notADuration = ValueFormatError("\"\(text)\" is not a duration (e.g. 90s, 5m, 1h30m, 24h)")
    var rest = Substring(text.trimmingCharacters(in: " "))
    var total = 0.0
    var lastRank = -1
    guard !rest.isEmpty else { throw notADuration }
    while !rest.isEmpty {
        let digits = rest.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, digits.count <= 12, let value = Double(digits) else { throw notADuration }
        rest = rest.dropFirst(digits.count)
        let unitText = rest.prefix { $0.isASCII && $0.isLetter }
        guard let rank = units.firstIndex(where: { $0.0 == unitText }), rank > lastRank else { throw notADuration }
        rest = rest.dropFirst(unitText.count)
        total += value * units[rank].1
        lastRank = rank
    }
    return total
}

/// A duration in its largest whole unit (`24h`, `5m`, `90s`, `1500ms`; hours are the largest), as ranges are shown.
public func formatDuration(_ seconds: Double) -> String {
    if seconds >= 3600, seconds.truncatingRemainder(dividingBy: 3600) == 0 { return "\(Int(seconds / 3600))h" }
    if seconds >= 60, seconds.truncatingRemainder(dividingBy: 60) == 0 { return "\(Int(seconds / 60))m" }
    if seconds >= 1, seconds.truncatingRemainder(dividingBy: 1) == 0 { return "\(Int(seconds))s" }
    return "\(Int((seconds * 1000).rounded()))ms"
}
