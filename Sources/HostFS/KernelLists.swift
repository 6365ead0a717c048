// The kernel's list format (`0,2-3,8-11`): sysfs `online`, `has_memory`, `cpulist`, and every
// flag or API field that names nodes.

/// Parses a kernel list such as `0,2-3,8-11` (sysfs `cpulist`, `online`; `--scan.nodes`).
/// Returns the ids ascending without duplicates. An empty or all-white-space text is an empty
/// list (a CPU-less node's `cpulist` is an empty line).
public func parseList(_ text: String) throws(ValueFormatError) -> [Int] {
    let trimmed = text.trimmingCharacters(in: " \t\n")
    if trimmed.isEmpty { return [] }
    var ids = Set<Int>()
    for part in trimmed.split(separator: ",", omittingEmptySubsequences: false) {
        let bounds = part.split(separator: "-", omittingEmptySubsequences: false)
        guard (1...2).contains(bounds.count),
              let lo = Int(bounds[0]), lo >= 0, lo < 1 << 20,
              let hi = bounds.count == 2 ? Int(bounds[1]) : lo, hi >= lo, hi < 1 << 20 else {
            throw ValueFormatError("\"\(part)\" in \"\(trimmed)\" is not N or N-M with 0 <= N <= M")
        }
        for id in lo...hi { ids.insert(id) }
    }
    return ids.sorted()
}

/// Formats ascending integers as a kernel list (`0-3,8`).
public func formatKernelList(_ values: [Int]) -> String {
    var parts: [String] = []
    var i = 0
    let v = values.sorted()
    while i < v.count {
        var j = i
        while j + 1 < v.count && v[j + 1] == v[j] + 1 { j += 1 }
        parts.append(i == j ? "\(v[i])" : "\(v[i])-\(v[j])")
        i = j + 1
    }
    return parts.joined(separator: ",")
}
