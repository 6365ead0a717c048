import ScanWorkers

/// The HTML page at `/`: what this is, its version, and where to go next.
enum LandingPage {
    static func render(telemetryPath: String, surface: (any ControlSurface)? = nil) -> String {
        let statusTable = surface.map(nodeTable) ?? ""
        return """
        <!DOCTYPE html>
        <html lang="en">
        <head><meta charset="utf-8"><title>mcescan-exporter</title>
        <style>body{font-family:sans-serif;max-width:72em;margin:2em auto;padding:0 1em}
        table{border-collapse:collapse}.wide{overflow-x:auto}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left}</style></head>
        <body>
        <h1>mcescan-exporter</h1>
        <p>Proactive memory-error scanning per NUMA node, exported to Prometheus.
        Version \(html(BuildInfo.version)) (revision \(html(BuildInfo.revision)), Swift \(html(BuildInfo.swiftVersion))).</p>
        <ul>
        <li><a href="\(html(telemetryPath))">\(html(telemetryPath))</a> — metrics (Prometheus text 0.0.4; OpenMetrics when asked)</li>
        <li><a href="/api/v1/nodes">/api/v1/nodes</a> — scan workers, knobs and statistics (JSON control API)</li>
        <li><a href="/api/v1/events">/api/v1/events</a> — errors found</li>
        <li><a href="/mcescan">/mcescan</a> — the knobs as text files, for curl</li>
        <li><a href="/healthz">/healthz</a> — health</li>
        <li>Docs in the source tree: <code>docs/api.md</code> (control API, with curl examples),
        <code>docs/api/openapi.yaml</code>, <code>docs/metrics.md</code>, <code>docs/operations.md</code></li>
        </ul>
        \(statusTable)
        </body>
        </html>

        """
    }

    /// One row per scanned node: state, knobs, progress and errors found.
    static func nodeTable(_ surface: any ControlSurface) -> String {
        var rows = ""
        for node in surface.nodes {
            guard let config = surface.control(node: node)?.snapshot() else { continue }
            let status = surface.status(node: node)
            func stat(_ name: String) -> String { status?.stat.first { $0.name == name }.map { String($0.value) } ?? "–" }
            let last = status?.lastFullScan.map(formatRFC3339) ?? "never"
            let types = ScanConfig.typeNames(config.type).joined(separator: ",")
            rows += "<tr><td>\(node)</td><td>\(html(status?.state ?? "unknown"))\(status?.failure.map { ": " + html($0) } ?? "")</td>" +
                "<td>\(config.pagesToScan)</td><td>\(config.sleepMillis)</td><td>\(html(types.isEmpty ? "none" : types))</td>" +
                "<td>\(stat("pages_scanned"))</td><td>\(stat("full_scans"))</td><td>\(html(last))</td>" +
                "<td>\(stat("corrupted_words"))</td><td>\(stat("poisoned_pages"))</td></tr>\n"
        }
        return """
        <h2>Scan workers</h2>
        <div class="wide"><table>
        <tr><th>node</th><th>state</th><th>pages_to_scan</th><th>scan_sleep_millisecs</th><th>type</th>\
        <th>pages scanned</th><th>full scans</th><th>last full scan</th><th>corrupted words</th><th>poisoned pages</th></tr>
        \(rows)</table></div>
        """
    }

    /// Escapes text for HTML element content and attribute values.
    static func html(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }
}
