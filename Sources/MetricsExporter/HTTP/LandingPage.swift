/// The HTML page at `/`: what this is, its version, and where to go next.
enum LandingPage {
    static func render(telemetryPath: String, statusTable: String = "") -> String {
        """
        <!DOCTYPE html>
        <html lang="en">
        <head><meta charset="utf-8"><title>mcescan-exporter</title>
        <style>body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}
        table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left}</style></head>
        <body>
        <h1>mcescan-exporter</h1>
        <p>Proactive memory-error scanning per NUMA node, exported to Prometheus.
        Version \(html(BuildInfo.version)) (revision \(html(BuildInfo.revision)), Swift \(html(BuildInfo.swiftVersion))).</p>
        <ul>
        <li><a href="\(html(telemetryPath))">\(html(telemetryPath))</a> — metrics (Prometheus text 0.0.4; OpenMetrics when asked)</li>
        <li><a href="/healthz">/healthz</a> — health</li>
        </ul>
        \(statusTable)
        </body>
        </html>

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
