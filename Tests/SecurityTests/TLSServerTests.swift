import Logging
import Testing
import TestSupport
@testable import MetricsExporter

#if canImport(Glibc)
import Glibc
#endif

/// A constant collector, so /metrics has something to say.
struct OneCollector: Collector {
    let name = "one"
    func collect(into families: inout [MetricFamily]) throws {
        families.append(try MetricFamily(name: "test_one", help: "One.", type: .gauge, metrics: [Metric([:], 1.0)]))
    }
}

/// The real server (libmicrohttpd + GnuTLS) with the web config's TLS material and the access
/// wrapper, judged by curl.
@Suite("HTTPS and basic auth through libmicrohttpd", .serialized)
struct TLSServerTests {
    /// `defaultPriorities`: hand libmicrohttpd no priority string (its own default), as a reference.
    func start(_ yaml: String, defaultPriorities: Bool = false, timeoutSeconds: Int = 10,
               maxConnections: Int = 40, limitsLoopbackPeers: Bool = false) throws -> (HTTPServer, UInt16, Fixtures) {
        let f = try Fixtures.get()
        let config = try WebConfig.parse(yaml.replacingOccurrences(of: "$HASH", with: f.aliceHash), file: "\(f.dir)/web.yml")
        let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        let registry = MetricsRegistry(collectors: [OneCollector()], logger: logger)
        var server = HTTPServerConfiguration(listenAddresses: [try ListenAddress(parsing: "127.0.0.1:0")])
        server.connectionTimeoutSeconds = timeoutSeconds
        server.maxConnections = maxConnections
        server.limitsLoopbackPeers = limitsLoopbackPeers
        if let tls = config.tls {
            server.tls = .init(keyPEM: tls.keyPEM, certificatePEM: tls.certificatePEM,
                               priorities: defaultPriorities ? nil : tls.priorities)
        }
        let handler = AccessControl(wrapping: ExporterHandler(registry: registry), config: config)
        let s = try HTTPServer(configuration: server, handler: handler)
        return (s, s.boundAddresses[0].port, f)
    }

    /// curl's status code for a request (000 when no HTTP response came back).
    func curl(_ arguments: String, port: UInt16, path: String = "/metrics", scheme: String = "https") throws -> String {
        let r = try shell("curl -sS -o /dev/null -w '%{http_code}' --max-time 10 --resolve localhost:\(port):127.0.0.1 \(arguments) \(scheme)://localhost:\(port)\(path)")
        return String(r.output.suffix(3))
    }

    /// Handshakes trickled a byte at a time never complete a TLS record. One peer holding every
    /// place it can still leaves room for a client from another address, and its connections are
    /// cut by the deadline. (Both are on loopback, so the per-peer share is turned on for it.)
    @Test("stalled TLS handshakes from one peer neither keep another client out nor last")
    func stalledHandshakesAreBounded() throws {
        let (server, port, f) = try start("""
            tls_server_config:
              cert_file: tls/cert.pem
              key_file: tls/key.pem
            """, timeoutSeconds: 3, maxConnections: 8, limitsLoopbackPeers: true)
        defer { server.shutdown() }
        // A TLS handshake record header announcing 512 bytes, then one byte at a time.
        let peers = try (0..<8).map { _ in
            try TricklingPeer(port: port, prefix: [0x16, 0x03, 0x01, 0x02, 0x00], interval: 0.3, maxSeconds: 8)
        }
        usleep(300_000)
        let t0 = TricklingPeer.now()
        #expect(try curl("--cacert \(f.dir)/tls/cert.pem", port: port) == "200")
        #expect(TricklingPeer.now() - t0 < 2)
        let closed = peers.compactMap { $0.waitClosed() }
        #expect(closed.count == 8)
        #expect(closed.allSatisfy { $0 < 5 })
    }

    @Test("curl --cacert with credentials gets 200; without 401; wrong password 401; plain HTTP fails")
    func httpsWithAuth() throws {
        let (server, port, f) = try start("""
            tls_server_config:
              cert_file: tls/cert.pem
              key_file: tls/key.pem
            basic_auth_users:
              alice: $HASH
            """)
        defer { server.shutdown(gracePeriod: 1) }
        #expect(try curl("--cacert '\(f.certFile)' -u alice:wonderland", port: port) == "200")
        #expect(try curl("--cacert '\(f.certFile)' -u alice:wonderland", port: port, path: "/healthz") == "200")
        #expect(try curl("--cacert '\(f.certFile)'", port: port) == "401")
        #expect(try curl("--cacert '\(f.certFile)' -u alice:wrong", port: port) == "401")
        #expect(try curl("--cacert '\(f.certFile)' -u mallory:wonderland", port: port) == "401")
        // An untrusted certificate fails verification (curl exit 60), plain HTTP gets no HTTP answer.
        #expect(try shell("curl -sS -o /dev/null --max-time 10 --resolve localhost:\(port):127.0.0.1 -u alice:wonderland https://localhost:\(port)/metrics").status == 60)
        #expect(try curl("-u alice:wonderland", port: port, scheme: "http") == "000")
        // The body really is the exposition.
        let body = try mustRun("curl -sS --max-time 10 --cacert '\(f.certFile)' --resolve localhost:\(port):127.0.0.1 -u alice:wonderland https://localhost:\(port)/metrics")
        #expect(body.contains("test_one 1"))
    }

    @Test("min_version TLS13 refuses a TLS 1.2 client; the default refuses TLS 1.1 (libmicrohttpd's own default would not)")
    func protocolVersions() throws {
        do {
            let (server, port, f) = try start("tls_server_config:\n  cert_file: tls/cert.pem\n  key_file: tls/key.pem\n  min_version: TLS13\n")
            defer { server.shutdown(gracePeriod: 1) }
            #expect(try curl("--cacert '\(f.certFile)' --tlsv1.3", port: port) == "200")
            #expect(try curl("--cacert '\(f.certFile)' --tlsv1.2 --tls-max 1.2", port: port) == "000")
        }
        do {
            let (server, port, f) = try start("tls_server_config:\n  cert_file: tls/cert.pem\n  key_file: tls/key.pem\n")
            defer { server.shutdown(gracePeriod: 1) }
            #expect(try curl("--cacert '\(f.certFile)' --tlsv1.2 --tls-max 1.2", port: port) == "200")
            // openssl offers TLS 1.1 only at security level 0; the server must still refuse.
            let r = try shell("echo | openssl s_client -connect 127.0.0.1:\(port) -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0' 2>&1")
            #expect(r.status != 0, "\(r.output)")
        }
        do {
            // The reference: the same client does get TLS 1.1 from libmicrohttpd's own default
            // ("NORMAL"), so the refusal above is the priority string's doing, not the client's.
            let (server, port, _) = try start("tls_server_config:\n  cert_file: tls/cert.pem\n  key_file: tls/key.pem\n",
                                              defaultPriorities: true)
            defer { server.shutdown(gracePeriod: 1) }
            let r = try shell("echo | openssl s_client -connect 127.0.0.1:\(port) -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0' 2>&1")
            #expect(r.status == 0, "\(r.output)")
            #expect(r.output.contains("Protocol  : TLSv1.1") || r.output.contains("TLSv1.1"), "\(r.output)")
        }
    }
}
