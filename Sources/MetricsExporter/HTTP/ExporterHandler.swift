import Synchronization

/// The exporter's routes: the telemetry path, the landing page and `/healthz`. Unknown paths get
/// 404, known paths with another method 405 with `Allow`, both with the JSON error shape.
public final class ExporterHandler: HTTPHandler {
    public let telemetryPath: String
    let registry: MetricsRegistry
    /// Extra routes mounted by later layers (control API), consulted before the 404.
    let extraRoutes: [any HTTPRoute]
    /// What `/healthz` reports.
    let health: @Sendable () -> HealthReport
    /// The scanned nodes, for the landing page's status table (nil: no table).
    let surface: (any ControlSurface)?
    /// Encoding buffers kept between scrapes (one per concurrent scrape, at most 8).
    private let buffers = Mutex<[ExpositionBuffer]>([])

    public init(registry: MetricsRegistry, telemetryPath: String = "/metrics", extraRoutes: [any HTTPRoute] = [],
                health: @escaping @Sendable () -> HealthReport = { HealthReport() }, surface: (any ControlSurface)? = nil) {
        self.registry = registry
        self.surface = surface
        self.telemetryPath = telemetryPath
        self.extraRoutes = extraRoutes
        self.health = health
    }

    public func handle(_ request: HTTPRequest) -> HTTPResponse {
        switch request.path {
        case telemetryPath:
            guard isRead(request) else { return methodNotAllowed(["GET", "HEAD"]) }
            return metrics(request)
        case "/":
            guard isRead(request) else { return methodNotAllowed(["GET", "HEAD"]) }
            return HTTPResponse(status: 200, contentType: "text/html; charset=utf-8", body: LandingPage.render(telemetryPath: telemetryPath, surface: surface))
        case "/healthz":
            guard isRead(request) else { return methodNotAllowed(["GET", "HEAD"]) }
            return health().response
        default:
            for route in extraRoutes {
                if let response = route.respond(to: request) { return response }
            }
            return HTTPResponse.error(404, code: "not_found", message: "no such path: \(request.path)")
        }
    }

    private func isRead(_ request: HTTPRequest) -> Bool {
        request.method == "GET" || request.method == "HEAD"
    }

    private func methodNotAllowed(_ allowed: [String]) -> HTTPResponse {
        HTTPResponse.error(405, code: "method_not_allowed", message: "allowed methods: \(allowed.joined(separator: ", "))",
                           headers: [("Allow", allowed.joined(separator: ", "))])
    }

    /// Gathers, encodes in the negotiated format, gzips when allowed.
    func metrics(_ request: HTTPRequest) -> HTTPResponse {
        let format = ContentNegotiation.format(accept: request.header("Accept"))
        let set = registry.gather()
        // Encode into a pooled buffer (no allocation once warm), then copy out once.
        let buffer = buffers.withLock { $0.popLast() } ?? ExpositionBuffer()
        buffer.reset()
        ExpositionEncoder.encode(set.families, format: format, into: buffer)
        var headers: [(name: String, value: String)] = [("Content-Type", format.contentType), ("Vary", "Accept, Accept-Encoding")]
        var body: [UInt8]
        if ContentNegotiation.acceptsGzip(request.header("Accept-Encoding")),
           let compressed = buffer.withUnsafeBytes({ Gzip.compress($0) }) {
            body = compressed
            headers.append(("Content-Encoding", "gzip"))
        } else {
            body = buffer.bytes
        }
        buffers.withLock { if $0.count < 8 { $0.append(buffer) } }
        return HTTPResponse(status: 200, headers: headers, body: body)
    }
}

/// A route mounted beside the exporter's own (the control API, the sysfs-shaped view). Returns
/// nil when the path is not its own.
public protocol HTTPRoute: Sendable {
    func respond(to request: HTTPRequest) -> HTTPResponse?
}

/// The daemon's health as `/healthz` tells it.
///
/// A failed worker is 503: that node is not scanned, and a restart may bring it back. A degraded
/// daemon still serves and scans but lost a guarantee (found errors not yet on disk); it answers
/// 200 with `"status":"degraded"` and the problems, because restarting it (what a liveness probe
/// does with a 503) would not fix a full disk and would drop the queued events.
public struct HealthReport: Sendable, Equatable {
    /// Failed scan workers, one line each.
    public var failed: [String]
    /// Problems that leave the daemon serving, one line each.
    public var degraded: [String]

    public init(failed: [String] = [], degraded: [String] = []) {
        self.failed = failed
        self.degraded = degraded
    }

    var response: HTTPResponse {
        if !failed.isEmpty {
            return HTTPResponse.error(503, code: "worker_failed", message: "failed scan workers: " + failed.joined(separator: "; "))
        }
        if !degraded.isEmpty {
            let problems = degraded.map(jsonString).joined(separator: ",")
            return HTTPResponse(status: 200, contentType: "application/json", body: "{\"status\":\"degraded\",\"problems\":[\(problems)]}\n")
        }
        return HTTPResponse(status: 200, contentType: "application/json", body: "{\"status\":\"ok\"}\n")
    }
}
