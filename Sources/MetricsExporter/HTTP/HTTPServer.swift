import CMicroHTTPD
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Why the server could not start or a listen address is unusable.
public struct HTTPServerError: Error, Sendable, CustomStringConvertible, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// How the embedded server runs. Defaults are those of the `--web.*` flags.
public struct HTTPServerConfiguration: Sendable {
    public var listenAddresses: [ListenAddress]
    /// `--web.max-requests`: concurrent connections per listen address.
    public var maxConnections: Int = 40
    /// Idle connections are closed after this many seconds; a connection must also deliver each
    /// request head (and, with TLS, finish its handshake) within this many seconds of being
    /// accepted or of its previous request completing, however slowly it trickles bytes.
    public var connectionTimeoutSeconds: Int = 10
    /// Connections one peer address may hold at once (nil: a quarter of `maxConnections`, at
    /// least 2), so one misbehaving peer cannot take every place and a scrape from another
    /// address still gets in.
    public var perPeerConnectionLimit: Int?
    /// Whether loopback peers count against `perPeerConnectionLimit` (by default they do not:
    /// every local client shares one address).
    public var limitsLoopbackPeers = false
    /// libmicrohttpd worker threads per listen address (default: the number of online CPUs).
    public var threadPoolSize: Int = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    /// Larger request bodies get 413 without being read.
    public var maxBodyBytes: Int = 64 * 1024
    /// Per-connection memory for headers and buffers; a request whose headers do not fit gets 431.
    public var connectionMemoryBytes: Int = 32 * 1024
    /// PEM key and certificate for HTTPS (libmicrohttpd with GnuTLS); nil serves plain HTTP.
    public var tls: TLSMaterial?

    public struct TLSMaterial: Sendable {
        public var keyPEM: String
        public var certificatePEM: String
        /// GnuTLS priority string (protocol versions, ciphers); nil: libmicrohttpd's default.
        public var priorities: String?
        public init(keyPEM: String, certificatePEM: String, priorities: String? = nil) {
            self.keyPEM = keyPEM
            self.certificatePEM = certificatePEM
            self.priorities = priorities
        }
    }

    public init(listenAddresses: [ListenAddress]) {
        self.listenAddresses = listenAddresses
    }
}

/// The embedded HTTP server: libmicrohttpd with an epoll internal thread and a thread pool per
/// listen address. Requests are read whole (body limit enforced) and passed to an `HTTPHandler`.
public final class HTTPServer: Sendable {
    /// The addresses actually listened on, with real ports where 0 was asked for.
    public let boundAddresses: [ListenAddress]
    private let context: ServerContext
    nonisolated(unsafe) private let contextPointer: UnsafeMutableRawPointer
    private let daemons: Mutex<[OpaquePointer]>
    private let isStopped = Atomic<Bool>(false)

    /// Binds every listen address and starts serving. Nothing is left listening if any address
    /// fails.
    public init(configuration: HTTPServerConfiguration, handler: any HTTPHandler) throws(HTTPServerError) {
        guard !configuration.listenAddresses.isEmpty else { throw HTTPServerError("no listen address given") }
        let connections = ConnectionGuard(
            seconds: Double(max(1, configuration.connectionTimeoutSeconds)),
            perPeerLimit: configuration.perPeerConnectionLimit ?? max(2, configuration.maxConnections / 4),
            limitsLoopback: configuration.limitsLoopbackPeers)
        try connections.start()
        let context = ServerContext(handler: handler, maxBody: configuration.maxBodyBytes, connections: connections)
        let pointer = Unmanaged.passRetained(context).toOpaque()
        var started: [OpaquePointer] = []
        var bound: [ListenAddress] = []
        func cleanUp() {
            for d in started { MHD_stop_daemon(d) }
            connections.stop()
            Unmanaged<ServerContext>.fromOpaque(pointer).release()
        }
        for address in configuration.listenAddresses {
            let socket: BoundSocket
            do {
                socket = try SocketBinder.bind(address)
            } catch {
                cleanUp()
                throw error
            }
            let flags = UInt32(MHD_USE_EPOLL_INTERNAL_THREAD.rawValue) | UInt32(MHD_USE_ITC.rawValue)
            let daemon: OpaquePointer? = withOptionalCString(configuration.tls?.keyPEM) { key in
                withOptionalCString(configuration.tls?.certificatePEM) { cert in
                    withOptionalCString(configuration.tls?.priorities) { priorities in
                        mcescan_mhd_start(flags, socket.fd, accessHandler, pointer, requestCompleted, pointer,
                                          UInt32(max(1, configuration.threadPoolSize)),
                                          UInt32(max(1, configuration.maxConnections)),
                                          UInt32(max(1, configuration.connectionTimeoutSeconds)),
                                          configuration.connectionMemoryBytes, admitConnection, pointer,
                                          connectionNotify, pointer, key, cert, priorities)
                    }
                }
            }
            guard let daemon else {
                close(socket.fd)
                cleanUp()
                throw HTTPServerError("libmicrohttpd could not start on \(socket.address)" +
                                      (configuration.tls != nil ? " (check the TLS key and certificate)" : ""))
            }
            started.append(daemon)
            bound.append(socket.address)
        }
        self.context = context
        self.contextPointer = pointer
        self.daemons = Mutex(started)
        self.boundAddresses = bound
    }

    /// Requests answered so far and requests being processed now (for tests and self metrics).
    public var inFlightRequests: Int { context.inFlight.load(ordering: .relaxed) }

    /// Connections closed because they did not deliver a request head in time.
    public var lateHeadConnections: Int { context.connections.expiredConnections }

    /// Stops accepting connections, lets requests already being processed finish (up to
    /// `gracePeriod` seconds), then closes every connection. Idempotent.
    public func shutdown(gracePeriod: Double = 10) {
        guard !isStopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        context.draining.store(true, ordering: .releasing)
        let list = daemons.withLock { $0 }
        for d in list {
            let fd = MHD_quiesce_daemon(d)
            if fd >= 0 { close(fd) }
        }
        let deadline = monotonicSeconds() + gracePeriod
        while context.inFlight.load(ordering: .acquiring) > 0 && monotonicSeconds() < deadline {
            usleep(2_000)
        }
        for d in list { MHD_stop_daemon(d) }
        daemons.withLock { $0 = [] }
        context.connections.stop()
        Unmanaged<ServerContext>.fromOpaque(contextPointer).release()
    }

    deinit {
        shutdown(gracePeriod: 0)
    }
}

private func withOptionalCString<R>(_ s: String?, _ body: (UnsafePointer<CChar>?) -> R) -> R {
    guard let s else { return body(nil) }
    return s.withCString { body($0) }
}

/// State shared by every libmicrohttpd thread of one server.
final class ServerContext: Sendable {
    let handler: any HTTPHandler
    let maxBody: Int
    let inFlight = Atomic<Int>(0)
    let draining = Atomic<Bool>(false)
    let connections: ConnectionGuard

    init(handler: any HTTPHandler, maxBody: Int, connections: ConnectionGuard) {
        self.handler = handler
        self.maxBody = maxBody
        self.connections = connections
    }
}

/// Per-request state kept in libmicrohttpd's `con_cls` between handler calls. Only the thread that
/// owns the connection touches it.
final class RequestState {
    var body: [UInt8] = []
    var tooLarge = false
}

/// Collects header or argument pairs through MHD_get_connection_values.
final class PairCollector {
    var pairs: [(String, String?)] = []
}

private let accessHandler: MHD_AccessHandlerCallback = { cls, connection, url, method, _, uploadData, uploadDataSize, conCls in
    guard let cls, let connection, let conCls, let uploadDataSize else { return .NO }
    let context = Unmanaged<ServerContext>.fromOpaque(cls).takeUnretainedValue()

    guard let raw = conCls.pointee else {
        // First call for this request: headers are in, the body (if any) is not.
        context.connections.headArrived(connection)
        let state = RequestState()
        conCls.pointee = Unmanaged.passRetained(state).toOpaque()
        context.inFlight.wrappingAdd(1, ordering: .relaxed)
        if context.draining.load(ordering: .acquiring) {
            return queue(connection, HTTPResponse.error(503, code: "shutting_down", message: "the exporter is shutting down"))
        }
        if let refusal = malformedRequest(connection, url: url) {
            state.tooLarge = true   // ignore any body; the refusal is answered at once
            return queue(connection, refusal)
        }
        if let lengthText = lookup(connection, .HEADER_KIND, "Content-Length"),
           let length = Int(lengthText), length > context.maxBody {
            state.tooLarge = true
            return queue(connection, tooLargeResponse(context.maxBody))
        }
        return .YES
    }
    let state = Unmanaged<RequestState>.fromOpaque(raw).takeUnretainedValue()
    if uploadDataSize.pointee > 0 {
        if !state.tooLarge, let uploadData {
            if state.body.count + uploadDataSize.pointee > context.maxBody {
                state.tooLarge = true
                state.body = []
            } else {
                uploadData.withMemoryRebound(to: UInt8.self, capacity: uploadDataSize.pointee) {
                    state.body.append(contentsOf: UnsafeBufferPointer(start: $0, count: uploadDataSize.pointee))
                }
            }
        }
        uploadDataSize.pointee = 0
        return .YES
    }
    if state.tooLarge { return queue(connection, tooLargeResponse(context.maxBody)) }

    let request = HTTPRequest(
        method: method.map { String(cString: $0) } ?? "GET",
        path: url.map { String(cString: $0) } ?? "/",
        query: pairs(connection, .GET_ARGUMENT_KIND),
        headers: pairs(connection, .HEADER_KIND).map { ($0.0, $0.1 ?? "") },
        body: state.body,
        peer: peerAddress(connection))
    state.body = []
    return queue(connection, context.handler.handle(request))
}

private let requestCompleted: MHD_RequestCompletedCallback = { cls, connection, conCls, _ in
    guard let cls, let conCls, let raw = conCls.pointee else { return }
    Unmanaged<RequestState>.fromOpaque(raw).release()
    conCls.pointee = nil
    let context = Unmanaged<ServerContext>.fromOpaque(cls).takeUnretainedValue()
    // A keep-alive connection owes its next request head from now on.
    if let connection { context.connections.requestDone(connection) }
    context.inFlight.wrappingSubtract(1, ordering: .releasing)
}

/// Requests whose meaning is ambiguous are refused before any route sees them (400): an encoded
/// NUL in the path (left encoded by the unescape callback, so it cannot cut the path short), two
/// `Host` headers, or `Content-Length` headers that disagree (peers could frame the body differently).
private func malformedRequest(_ connection: OpaquePointer, url: UnsafePointer<CChar>?) -> HTTPResponse? {
    let path = url.map { String(cString: $0) } ?? "/"
    if path.contains("%00") || pairs(connection, .GET_ARGUMENT_KIND).contains(where: { $0.0.contains("%00") || ($0.1?.contains("%00") ?? false) }) {
        return HTTPResponse.error(400, code: "bad_request", message: "the request target contains an encoded NUL byte (%00)")
    }
    let headers = pairs(connection, .HEADER_KIND)
    if headers.filter({ $0.0.lowercased() == "host" }).count > 1 {
        return HTTPResponse.error(400, code: "bad_request", message: "the request has more than one Host header")
    }
    let lengths = Set(headers.filter { $0.0.lowercased() == "content-length" }.map { ($0.1 ?? "").trimmingWhitespace() })
    if lengths.count > 1 {
        return HTTPResponse.error(400, code: "bad_request", message: "the request has Content-Length headers that disagree")
    }
    return nil
}

private func tooLargeResponse(_ limit: Int) -> HTTPResponse {
    var r = HTTPResponse.error(413, code: "body_too_large", message: "request body exceeds \(limit) bytes")
    r.headers.append(("Connection", "close"))
    return r
}

private func queue(_ connection: OpaquePointer, _ response: HTTPResponse) -> MHD_Result {
    let mhdResponse: OpaquePointer? = response.body.withUnsafeBytes { bytes in
        MHD_create_response_from_buffer(bytes.count, UnsafeMutableRawPointer(mutating: bytes.baseAddress), .RESPMEM_MUST_COPY)
    }
    guard let mhdResponse else { return .NO }
    defer { MHD_destroy_response(mhdResponse) }
    for (name, value) in response.headers {
        _ = MHD_add_response_header(mhdResponse, name, value)
    }
    return MHD_queue_response(connection, UInt32(response.status), mhdResponse)
}

private func lookup(_ connection: OpaquePointer, _ kind: MHD_ValueKind, _ key: String) -> String? {
    guard let value = MHD_lookup_connection_value(connection, kind, key) else { return nil }
    return String(cString: value)
}

private func pairs(_ connection: OpaquePointer, _ kind: MHD_ValueKind) -> [(String, String?)] {
    let collector = PairCollector()
    let pointer = Unmanaged.passUnretained(collector).toOpaque()
    _ = MHD_get_connection_values(connection, kind, { cls, _, key, value in
        guard let cls, let key else { return .YES }
        let c = Unmanaged<PairCollector>.fromOpaque(cls).takeUnretainedValue()
        c.pairs.append((String(cString: key), value.map { String(cString: $0) }))
        return .YES
    }, pointer)
    return withExtendedLifetime(collector) { collector.pairs }
}

func peerAddress(_ connection: OpaquePointer) -> PeerAddress? {
    var storage = sockaddr_storage()
    guard mcescan_mhd_client_address(connection, &storage) > 0 else { return nil }
    return withUnsafePointer(to: &storage) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { PeerAddress($0) }
    }
}

extension PeerAddress {
    /// The IP address of an AF_INET or AF_INET6 socket address; nil for any other family.
    init?(_ address: UnsafePointer<sockaddr>) {
        switch Int32(address.pointee.sa_family) {
        case AF_INET:
            let sin = UnsafeRawPointer(address).loadUnaligned(as: sockaddr_in.self)
            self.init(family: .ipv4, bytes: withUnsafeBytes(of: sin.sin_addr) { Array($0) })
        case AF_INET6:
            let sin6 = UnsafeRawPointer(address).loadUnaligned(as: sockaddr_in6.self)
            self.init(family: .ipv6, bytes: withUnsafeBytes(of: sin6.sin6_addr) { Array($0) })
        default:
            return nil
        }
    }
}
