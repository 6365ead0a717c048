extension DoctorReport {
    /// Column widths of the text table (detail and remedy wrap at word boundaries).
    static let detailWidth = 58
    static let remedyWidth = 44

    /// A table for people: capability / status / detail / remedy, then a summary line.
    public func renderText() -> String {
        let nameWidth = max("CAPABILITY".count, checks.map(\.name.count).max() ?? 0)
        let statusWidth = "STATUS".count + 1
        var out = ""
        func row(_ cells: [String]) {
            var line = ""
            line += cells[0].padding(nameWidth)
            line += "  " + cells[1].padding(statusWidth)
            line += "  " + cells[2].padding(Self.detailWidth)
            line += "  " + cells[3]
            while line.hasSuffix(" ") { line.removeLast() }
            out += line + "\n"
        }
        row(["CAPABILITY", "STATUS", "DETAIL", "REMEDY"])
        for check in checks {
            let detail = wrap(check.detail, width: Self.detailWidth)
            let remedy = wrap(check.remedy.isEmpty ? "-" : check.remedy, width: Self.remedyWidth)
            for i in 0..<max(detail.count, remedy.count) {
                row([i == 0 ? check.name : "", i == 0 ? check.status.rawValue : "",
                     i < detail.count ? detail[i] : "", i < remedy.count ? remedy[i] : ""])
            }
        }
        out += "\n\(checks.count) capabilities: \(count(.ok)) ok, \(count(.limited)) limited, \(count(.missing)) missing.\n"
        return out
    }

    /// Stable JSON for machines: keys in a fixed order, checks in report order.
    /// `{"capabilities":[{"name","status","detail","remedy","checked":[...]}],"summary":{"ok","limited","missing"}}`
    public func renderJSON() -> String {
        var out = "{\n  \"capabilities\": [\n"
        for (i, check) in checks.enumerated() {
            out += "    {\n"
            out += "      \"name\": \(jsonString(check.name)),\n"
            out += "      \"status\": \(jsonString(check.status.rawValue)),\n"
            out += "      \"detail\": \(jsonString(check.detail)),\n"
            out += "      \"remedy\": \(jsonString(check.remedy)),\n"
            out += "      \"checked\": [" + check.checked.map(jsonString).joined(separator: ", ") + "]\n"
            out += "    }" + (i == checks.count - 1 ? "\n" : ",\n")
        }
        out += "  ],\n"
        out += "  \"summary\": {\"ok\": \(count(.ok)), \"limited\": \(count(.limited)), \"missing\": \(count(.missing))}\n"
        out += "}\n"
        return out
    }
}

/// Greedy word wrap; a word longer than `width` gets a line of its own.
func wrap(_ text: String, width: Int) -> [String] {
    var lines: [String] = []
    var current = ""
    for word in text.split(separator: " ") {
        if current.isEmpty {
            current = String(word)
        } else if current.count + 1 + word.count <= width {
            current += " " + word
        } else {
            lines.append(current)
            current = String(word)
        }
    }
    if !current.isEmpty { lines.append(current) }
    return lines.isEmpty ? [""] : lines
}

extension String {
    fileprivate func padding(_ width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
