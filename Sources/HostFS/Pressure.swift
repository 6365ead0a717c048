/// Parses `/proc/pressure/memory` and returns `some avg10` (percent).
/// Format (Documentation/accounting/psi.rst): `some avg10=0.00 avg60=0.00 avg300=0.00 total=0`.
public func parsePSISomeAvg10(_ text: String) throws(HostFSError) -> Double {
    for line in text.split(separator: "\n") where line.hasPrefix("some ") {
        for field in line.split(separator: " ") where field.hasPrefix("avg10=") {
            if let v = Double(field.dropFirst(6)), v.isFinite, v >= 0 { return v }
            throw HostFSError(.malformed, path: "pressure/memory", "avg10 value \"\(field.dropFirst(6))\" is not a number")
        }
    }
    throw HostFSError(.malformed, path: "pressure/memory", "no \"some ... avg10=\" line")
}
