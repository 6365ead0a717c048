import Synchronization

/// The exporter's routes: the telemetry path, the landing page and `/healthz`. Unknown paths get
/// 404, known paths with another method 405 with `Allow`, both with the JSON error shape.
public final class ExporterHandler: HTTPHandler {
    public let telemetryPath: String
    let registry: MetricsRegistry
    /// Extra routes mounted by later layers (control API), consulted before the 404.
    let extraRoutes: [any HTTPRoute]
    /// Failed scan workers, one line each; `/healthz` answers 503 listing them when any.
    let health: @Sendable () -> [String]
    /// The scanned nodes, for the landing page's status table (nil: no table).
    let surface: (any ControlSurface)?
    /// Encoding buffers kept between scrapes (one per concurrent scrape, at most 8).
    private let buffers = Mutex<[ExpositionBuffer]>([])

    public init(registry: MetricsRegistry, telemetryPath: String = "/metrics", extraRoutes: [any HTTPRoute] = [],
                health: @escaping @Sendable () -> [String] = { [] }, surface: (any ControlSurface)? = nil) {
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
            let failed = health()
            if !failed.isEmpty {
                return HTTPResponse.error(503, code: "worker_failed", message: "failed scan workers: " + failed.joined(separator: "; "))
            }
            return HTTPResponse(status: 200, contentType: "application/json", body: "{\"status\":\"ok\"}\n")
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
