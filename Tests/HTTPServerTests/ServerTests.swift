import HostFS
import Logging
import Synchronization
import Testing
@testable import MetricsExporter
import ScanWorkers
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// A collector with fixed output.
struct FixedCollector: Collector {
    let name: String
    let value: Double
    func collect(into families: inout [MetricFamily]) throws {
        families.append(try MetricFamily(name: "test_\(name)_value", help: "Fixed value of \(name).", type: .gauge,
                                         metrics: [Metric(["node": "0"], value)]))
    }
}

/// A collector whose source is broken.
struct FailingCollector: Collector {
    let name = "broken"
    func collect(into families: inout [MetricFamily]) throws {
        throw HostFSError(.malformed, path: "/fixture/broken", "not a number")
    }
}

/// A route that blocks until released, to test graceful shutdown.
final class SlowRoute: HTTPRoute {
    let started = Atomic<Bool>(false)
    let release = Atomic<Bool>(false)
    func respond(to request: HTTPRequest) -> HTTPResponse? {
        guard request.path == "/slow" else { return nil }
        started.store(true, ordering: .releasing)
        while !release.load(ordering: .acquiring) { usleep(1000) }
        return HTTPResponse(status: 200, contentType: "text/plain", body: "done\n")
    }
}

/// Echoes the request back, to check what the server hands to handlers.
struct EchoRoute: HTTPRoute {
    func respond(to request: HTTPRequest) -> HTTPResponse? {
        guard request.path == "/echo" else { return nil }
        var text = "method=\(request.method)\npath=\(request.path)\nbody=\(request.body.count)\n"
        for q in request.query { text += "query \(q.name)=\(q.value ?? "<nil>")\n" }
        text += "x-test=\(request.header("X-Test") ?? "<nil>")\n"
        text += "peer=\(request.peer.map { "\($0)" } ?? "<nil>") loopback=\(request.peer?.isLoopback ?? false)\n"
        return HTTPResponse(status: 200, contentType: "text/plain", body: text)
    }
}

func makeServer(addresses: [String] = ["127.0.0.1:0"], telemetryPath: String = "/metrics",
                collectors: [any Collector] = [FixedCollector(name: "a", value: 1), FailingCollector()],
                routes: [any HTTPRoute] = [EchoRoute()],
                configure: (inout HTTPServerConfiguration) -> Void = { _ in }) throws -> HTTPServer {
    let logger = Logger(label: "test") { _ in LineLogHandler(label: "test", format: .logfmt, level: .error, sink: LogSink()) }
    let registry = MetricsRegistry(collectors: collectors, logger: logger)
    let handler = ExporterHandler(registry: registry, telemetryPath: telemetryPath, extraRoutes: routes)
    var config = HTTPServerConfiguration(listenAddresses: try addresses.map { try ListenAddress(parsing: $0) })
    configure(&config)
    return try HTTPServer(configuration: config, handler: handler)
}

/// Lines of an exposition body without the scrape-duration samples, which differ per scrape.
func stableLines(_ text: String) -> [Substring] {
    text.split(separator: "\n").filter { !$0.hasPrefix("mcescan_scrape_collector_duration_seconds{") }
}

@Suite("HTTP server on port 0", .serialized)
struct ServerTests {
    @Test("GET /metrics: 0.0.4 by default, every family, failed collector reported")
    func metricsText() throws {
        let server = try makeServer()
        defer { server.shutdown() }
        let port = server.boundAddresses[0].port
        #expect(port != 0)
        let r = try RawHTTPClient.request("GET", "/metrics", port: port)
        #expect(r.status == 200)
        #expect(r.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8")
        #expect(r.header("Vary") == "Accept, Accept-Encoding")
        #expect(r.header("Content-Encoding") == nil)
        #expect(r.header("Access-Control-Allow-Origin") == nil)
        let text = r.text
        #expect(text.contains("# TYPE test_a_value gauge\ntest_a_value{node=\"0\"} 1\n"))
        #expect(text.contains("mcescan_scrape_collector_success{collector=\"a\"} 1\n"))
        #expect(text.contains("mcescan_scrape_collector_success{collector=\"broken\"} 0\n"))
        #expect(text.contains("mcescan_scrape_collector_duration_seconds{collector=\"broken\"} "))
        #expect(text.contains("mcescan_exporter_build_info{revision="))
        #expect(!text.contains("# EOF"))
        #expect(r.header("Content-Length") == String(r.body.count))
    }

    @Test("OpenMetrics when preferred; gzip when allowed")
    func negotiation() throws {
        let server = try makeServer()
        defer { server.shutdown() }
        let port = server.boundAddresses[0].port
        let om = try RawHTTPClient.request("GET", "/metrics", port: port, headers: [
            ("Accept", "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")])
        #expect(om.status == 200)
        #expect(om.header("Content-Type") == "application/openmetrics-text; version=1.0.0; charset=utf-8")
        #expect(om.text.hasSuffix("# EOF\n"))

        let plain = try RawHTTPClient.request("GET", "/metrics", port: port)
        let gz = try RawHTTPClient.request("GET", "/metrics", port: port, headers: [("Accept-Encoding", "gzip")])
        #expect(gz.status == 200)
        #expect(gz.header("Content-Encoding") == "gzip")
        #expect(gz.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8")
        let inflated = try #require(Gzip.decompress(gz.body))
        #expect(stableLines(String(decoding: inflated, as: UTF8.self)) == stableLines(plain.text))

        let refused = try RawHTTPClient.request("GET", "/metrics", port: port, headers: [("Accept-Encoding", "gzip;q=0, identity")])
        #expect(refused.header("Content-Encoding") == nil)
    }

    @Test("HEAD answers headers without a body")
    func head() throws {
        let server = try makeServer()
        defer { server.shutdown() }
        let port = server.boundAddresses[0].port
        for path in ["/metrics", "/", "/healthz"] {
            let r = try RawHTTPClient.request("HEAD", path, port: port)
            #expect(r.status == 200, "HEAD \(path)")
            #expect(r.body.isEmpty, "HEAD \(path)")
            #expect(r.header("Content-Type") != nil)
        }
    }

    @Test("landing page and health")
    func landingAndHealth() throws {
        let server = try makeServer(telemetryPath: "/custom-metrics")
        defer { server.shutdown() }
        let port = server.boundAddresses[0].port
        let page = try RawHTTPClient.request("GET", "/", port: port)
        #expect(page.status == 200)
        #expect(page.header("Content-Type") == "text/html; charset=utf-8")
        #expect(page.text.contains("<a href=\"/custom-metrics\">"))
        #expect(page.text.contains(BuildInfo.version))
        let health = try RawHTTPClient.request("GET", "/healthz", port: port)
        #expect(health.status == 200)
        #expect(health.header("Content-Type") == "application/json")
        #expect(health.text == "{\"status\":\"ok\"}\n")
        #expect(try RawHTTPClient.request("GET", "/custom-metrics", port: port).status == 200)
        #expect(try RawHTTPClient.request("GET", "/metrics", port: port).status == 404)
    }

    struct ErrorCase: CustomTestStringConvertible, Sendable {
        var method: String
        var path: String
        var headers: [(String, String)] = []
        var body: [UInt8] = []
        var status: Int
        var code: String
        var allow: String? = nil
        var testDescription: String { "\(method) \(path) -> \(status)" }
    }

    static let errorCases: [ErrorCase] = [
        ErrorCase(method: "GET", path: "/nope", status: 404, code: "not_found"),
        ErrorCase(method: "GET", path: "/metrics/extra", status: 404, code: "not_found"),
        ErrorCase(method: "GET", path: "/METRICS", status: 404, code: "not_found"),
        ErrorCase(method: "POST", path: "/metrics", status: 405, code: "method_not_allowed", allow: "GET, HEAD"),
        ErrorCase(method: "PUT", path: "/", status: 405, code: "method_not_allowed", allow: "GET, HEAD"),
        ErrorCase(method: "DELETE", path: "/healthz", status: 405, code: "method_not_allowed", allow: "GET, HEAD"),
        ErrorCase(method: "PATCH", path: "/metrics", body: Array("{}".utf8), status: 405, code: "method_not_allowed", allow: "GET, HEAD"),
        ErrorCase(method: "POST", path: "/echo", body: [UInt8](repeating: 0x41, count: 64 * 1024 + 1), status: 413, code: "body_too_large"),
    ]

    @Test("errors use the JSON error shape", arguments: errorCases)
    func errors(_ c: ErrorCase) throws {
        let server = try makeServer()
        defer { server.shutdown() }
        let port = server.boundAddresses[0].port
        let r = try RawHTTPClient.request(c.method, c.path, port: port, headers: c.headers, body: c.body)
        #expect(r.status == c.status)
        #expect(r.header("Content-Type") == "application/json")
        #expect(r.text.hasPrefix("{\"error\":{\"code\":\"\(c.code)\",\"message\":\""))
        #expect(r.header("Allow") == c.allow)
        // The server is still alive and serving.
        #expect(try RawHTTPClient.request("GET", "/healthz", port: port).status == 200)
    }

    @Test("request bodies, query arguments, headers and the peer reach the handler")
    func echo() throws {
        let server = try makeServer()
        defer { server.shutdown() }
        let port = server.boundAddresses[0].port
        let body = [UInt8](repeating: 0x42, count: 64 * 1024)  // exactly the limit: accepted
        let r = try RawHTTPClient.request("POST", "/echo?after=3&limit=10&flag", port: port, headers: [("X-Test", "yes")], body: body)
        #expect(r.status == 200)
        #expect(r.text.contains("method=POST\n"))
        #expect(r.text.contains("body=65536\n"))
        #expect(r.text.contains("query after=3\nquery limit=10\nquery flag=<nil>\n"))
        #expect(r.text.contains("x-test=yes\n"))
        #expect(r.text.contains("peer=127.0.0.1 loopback=true\n"))
    }

    @Test("413 by Content-Length before the body is read")
    func tooLargeByHeader() throws {
        let server = try makeServer()
        defer { server.shutdown() }
        let port = server.boundAddresses[0].port
        let raw = Array("POST /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 10000000\r\n\r\n".utf8)
        let r = try RawHTTPClient.parse(try RawHTTPClient.exchange(port: port, raw: raw))
        #expect(r.status == 413)
    }

    @Test("IPv6 loopback and several listen addresses")
    func ipv6AndSeveral() throws {
        let server = try makeServer(addresses: ["127.0.0.1:0", "[::1]:0"])
        defer { server.shutdown() }
        #expect(server.boundAddresses.count == 2)
        #expect(server.boundAddresses[1].host == "::1")
        #expect(try RawHTTPClient.request("GET", "/healthz", port: server.boundAddresses[0].port).status == 200)
        let v6 = try RawHTTPClient.request("GET", "/echo", port: server.boundAddresses[1].port, host: "::1")
        #expect(v6.status == 200)
        #expect(v6.text.contains("peer=0:0:0:0:0:0:0:1 loopback=true"))
    }

    @Test("a port in use is a clear error and nothing stays bound")
    func portInUse() throws {
        let first = try makeServer()
        defer { first.shutdown() }
        let port = first.boundAddresses[0].port
        #expect {
            _ = try makeServer(addresses: ["127.0.0.1:0", "127.0.0.1:\(port)"])
        } throws: { error in
            "\(error)".contains("cannot listen on 127.0.0.1:\(port)") && "\(error)".contains("Address already in use")
        }
    }

    @Test("many concurrent scrapes all succeed")
    func concurrent() throws {
        let server = try makeServer()
        defer { server.shutdown() }
        let port = server.boundAddresses[0].port
        let failures = Atomic<Int>(0)
        let threads = (0..<8).map { _ in
            TestThread {
                for _ in 0..<25 {
                    let ok = (try? RawHTTPClient.request("GET", "/metrics", port: port, headers: [("Accept-Encoding", "gzip")]))?.status == 200
                    if !ok { failures.wrappingAdd(1, ordering: .relaxed) }
                }
            }
        }
        threads.forEach { $0.join() }
        #expect(failures.load(ordering: .relaxed) == 0)
    }

    @Test("connections beyond --web.max-requests are refused")
    func connectionLimit() throws {
        let server = try makeServer { config in
            config.maxConnections = 2
            config.threadPoolSize = 1
        }
        defer { server.shutdown() }
        let port = server.boundAddresses[0].port
        // Two idle connections take both places.
        let held = try (0..<2).map { _ in try IdleConnection(port: port) }
        usleep(100_000)
        let refused = try? RawHTTPClient.exchange(port: port, raw: Array("GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".utf8), timeoutSeconds: 3)
        #expect(refused?.isEmpty ?? true)
        held.forEach { $0.close() }
        usleep(100_000)
        #expect(try RawHTTPClient.request("GET", "/healthz", port: port).status == 200)
    }

    @Test("shutdown stops accepting, finishes the request in flight")
    func gracefulShutdown() throws {
        let slow = SlowRoute()
        let server = try makeServer(routes: [slow])
        let port = server.boundAddresses[0].port
        let result = Mutex<Int?>(nil)
        let client = TestThread {
            let status = (try? RawHTTPClient.request("GET", "/slow", port: port))?.status
            result.withLock { $0 = status }
        }
        while !slow.started.load(ordering: .acquiring) { usleep(1000) }
        let stopper = TestThread { server.shutdown(gracePeriod: 10) }
        usleep(200_000)
        // The listening socket is closed: new connections fail.
        #expect(throws: (any Error).self) { _ = try RawHTTPClient.request("GET", "/healthz", port: port) }
        slow.release.store(true, ordering: .releasing)
        client.join()
        stopper.join()
        #expect(result.withLock { $0 } == 200)
    }
}

@Suite("Listen addresses")
struct ListenAddressTests {
    @Test("valid forms", arguments: [
        (":10120", "", UInt16(10120)), ("0.0.0.0:9", "0.0.0.0", 9), ("127.0.0.1:0", "127.0.0.1", 0),
        ("[::1]:10120", "::1", 10120), ("[::]:0", "::", 0), ("localhost:80", "localhost", 80),
    ])
    func valid(_ text: String, _ host: String, _ port: UInt16) throws {
        let a = try ListenAddress(parsing: text)
        #expect(a.host == host)
        #expect(a.port == port)
    }

    @Test("invalid forms name the problem", arguments: [
        ("10120", "expected HOST:PORT"), ("127.0.0.1", "expected HOST:PORT"), (":", "port \"\" is not a number"),
        (":65536", "is not a number from 0 to 65535"), (":-1", "is not a number"), ("::1:80", "brackets"),
        ("[::1:80", "missing ']'"), ("[::1]80", "expected :PORT"), ("host:http", "port \"http\""),
    ])
    func invalid(_ text: String, _ fragment: String) {
        #expect {
            _ = try ListenAddress(parsing: text)
        } throws: { error in
            "\(error)".contains(fragment) && "\(error)".contains(text)
        }
    }

    @Test("an unresolvable or non-local address fails to start")
    func unbindable() {
        #expect(throws: HTTPServerError.self) { _ = try makeServer(addresses: ["192.0.2.1:0"]) }
        #expect(throws: HTTPServerError.self) { _ = try makeServer(addresses: ["no-such-host.invalid:0"]) }
    }
}


@Suite("Slow and greedy peers")
struct SlowPeerTests {
    /// Every byte resets libmicrohttpd's idle timeout; the head deadline is absolute.
    @Test("a peer trickling its request head is cut at the deadline")
    func trickledHeadIsCut() throws {
        let server = try makeServer { $0.connectionTimeoutSeconds = 2 }
        defer { server.shutdown() }
        let peer = try TricklingPeer(port: server.boundAddresses[0].port, prefix: Array("GET /metrics HTTP/1.1\r\nX-Slow: ".utf8),
                                     interval: 0.3, maxSeconds: 8)
        let closedAfter = try #require(peer.waitClosed())
        #expect(closedAfter >= 1.5 && closedAfter < 4)
        #expect(server.lateHeadConnections == 1)
    }

    /// Every test client is on loopback, so the limit is turned on for it here.
    @Test("a peer that fills its share of connections does not keep a scrape out")
    func greedyPeerLeavesRoomForAScrape() throws {
        let server = try makeServer { config in
            config.maxConnections = 8
            config.connectionTimeoutSeconds = 6
            config.limitsLoopbackPeers = true
        }
        defer { server.shutdown() }
        let port = server.boundAddresses[0].port
        let peers = try (0..<8).map { _ in
            try TricklingPeer(port: port, prefix: Array("GET / HTTP/1.1\r\nX: ".utf8), interval: 0.5, maxSeconds: 3)
        }
        usleep(300_000)
        let t0 = TricklingPeer.now()
        let response = try RawHTTPClient.request("GET", "/healthz", port: port)
        #expect(response.status == 200)
        #expect(TricklingPeer.now() - t0 < 1)
        // The peer's connections beyond its share were refused at once.
        #expect(peers.compactMap { $0.waitClosed() }.count == 6)
    }

    @Test("loopback peers share one address and are not held to a share by default")
    func loopbackPeersAreNotCapped() throws {
        let server = try makeServer { config in
            config.maxConnections = 8
            config.connectionTimeoutSeconds = 6
        }
        defer { server.shutdown() }
        let port = server.boundAddresses[0].port
        let peers = try (0..<6).map { _ in
            try TricklingPeer(port: port, prefix: Array("GET / HTTP/1.1\r\nX: ".utf8), interval: 0.5, maxSeconds: 2)
        }
        // None is refused: each trickles until it gives up by itself.
        #expect(peers.compactMap { $0.waitClosed() }.isEmpty)
    }
}

@Suite("Ambiguous requests")
struct AmbiguousRequestTests {
    static let cases: [(name: String, raw: String)] = [
        ("encoded NUL in the path", "PATCH /echo%00/x HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"),
        ("encoded NUL cutting a path short", "GET /echo%00 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
        ("encoded NUL in a query value", "GET /echo?a=1%00 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
        ("two Host headers", "GET /echo HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n"),
        ("Content-Length headers that disagree", "POST /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 2\r\nContent-Length: 4\r\n\r\nabcd"),
    ]

    @Test("are refused with 400 in the JSON error shape before any route runs", arguments: cases)
    func refused(_ c: (name: String, raw: String)) throws {
        let server = try makeServer()
        defer { server.shutdown() }
        let r = try RawHTTPClient.parse(try RawHTTPClient.exchange(port: server.boundAddresses[0].port, raw: Array(c.raw.utf8)))
        #expect(r.status == 400)
        #expect(r.text.contains("\"code\":\"bad_request\""))
        #expect(!r.text.contains("echo"))
    }

    @Test("other escapes still decode, and equal Content-Length headers are accepted")
    func stillDecoded() throws {
        let server = try makeServer()
        defer { server.shutdown() }
        let port = server.boundAddresses[0].port
        let r = try RawHTTPClient.parse(try RawHTTPClient.exchange(port: port, raw: Array(
            "POST /%65cho?a=%41%2b HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi".utf8)))
        #expect(r.status == 200)
        #expect(r.text.contains("path=/echo"))
        #expect(r.text.contains("query a=A+"))
    }
}

@Suite("Health report")
struct HealthReportTests {
    @Test("ok; degraded is 200 with the problems; a failed worker is 503 and wins")
    func statuses() {
        let ok = HealthReport().response
        #expect(ok.status == 200 && String(decoding: ok.body, as: UTF8.self) == "{\"status\":\"ok\"}\n")
        let degraded = HealthReport(degraded: ["events.jsonl: 120 bytes \"queued\""]).response
        #expect(degraded.status == 200)
        #expect(String(decoding: degraded.body, as: UTF8.self) == "{\"status\":\"degraded\",\"problems\":[\"events.jsonl: 120 bytes \\\"queued\\\"\"]}\n")
        let failed = HealthReport(failed: ["node 1: cannot pin"], degraded: ["x"]).response
        #expect(failed.status == 503)
        #expect(String(decoding: failed.body, as: UTF8.self).contains("\"code\":\"worker_failed\""))
        #expect(String(decoding: failed.body, as: UTF8.self).contains("node 1: cannot pin"))
    }
}
