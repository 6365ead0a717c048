import Logging
import Synchronization
import Testing
@testable import MetricsExporter

#if canImport(Glibc)
import Glibc
#endif

/// The wrapped handler: answers 200 "inner" (with a CORS header that must never reach the client)
/// and counts calls, so the matrix can tell "refused before the routes" from "passed through".
final class InnerHandler: HTTPHandler {
    let calls = Atomic<Int>(0)
    func handle(_ request: HTTPRequest) -> HTTPResponse {
        calls.wrappingAdd(1, ordering: .relaxed)
        return HTTPResponse(status: 200, headers: [("Content-Type", "text/plain"), ("Access-Control-Allow-Origin", "*")],
                            body: Array("inner \(request.method) \(request.path)\n".utf8))
    }
}

let loopback4 = PeerAddress(family: .ipv4, bytes: [127, 0, 0, 1])
let loopback6 = PeerAddress(family: .ipv6, bytes: [UInt8](repeating: 0, count: 15) + [1])
let mapped4 = PeerAddress(family: .ipv6, bytes: [UInt8](repeating: 0, count: 10) + [0xff, 0xff, 127, 0, 0, 2])
let remote4 = PeerAddress(family: .ipv4, bytes: [192, 0, 2, 10])
let remote6 = PeerAddress(family: .ipv6, bytes: [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [1])

/// One row of the matrix.
struct Case: Sendable, CustomTestStringConvertible {
    var method: String
    var path: String
    var peer: PeerAddress?
    var auth: String?           // "good", "bad", "garbage" or nil
    var host: String? = "localhost:10120"
    var contentType: String? = nil
    var body: String = ""
    var status: Int
    var code: String? = nil     // the JSON error code when refused

    var testDescription: String {
        "\(method) \(path) from \(peer.map { "\($0)" } ?? "?") auth=\(auth ?? "none") host=\(host ?? "-") type=\(contentType ?? "-") -> \(status)"
    }
}

private func run(_ c: Case, users: Bool) throws -> (HTTPResponse, Int) {
    let f = try Fixtures.get()
    let inner = InnerHandler()
    let config = WebConfig(basicAuthUsers: users ? ["alice": f.aliceHash] : [:])
    let handler = AccessControl(wrapping: inner, config: config)
    var headers: [(name: String, value: String)] = []
    switch c.auth {
    case "good": headers.append(("Authorization", basicHeader("alice", "wonderland")))
    case "bad": headers.append(("Authorization", basicHeader("alice", "nope")))
    case "garbage": headers.append(("Authorization", "Basic %%%"))
    default: break
    }
    if let host = c.host { headers.append(("Host", host)) }
    if let type = c.contentType { headers.append(("Content-Type", type)) }
    let request = HTTPRequest(method: c.method, path: c.path, headers: headers, body: Array(c.body.utf8), peer: c.peer)
    let response = handler.handle(request)
    return (response, inner.calls.load(ordering: .relaxed))
}

private func check(_ c: Case, users: Bool) throws {
    let (response, calls) = try run(c, users: users)
    #expect(response.status == c.status)
    #expect(calls == (c.status == 200 ? 1 : 0), "the routes must see only requests that passed")
    #expect(!response.headers.contains { $0.name.lowercased().hasPrefix("access-control-") }, "no CORS headers, ever")
    if let code = c.code {
        let text = String(decoding: response.body, as: UTF8.self)
        #expect(text.hasPrefix("{\"error\":{\"code\":\"\(code)\""), "\(text)")
        #expect(response.headers.contains { $0.name == "Content-Type" && $0.value == "application/json" })
    }
    if c.status == 401 {
        #expect(response.headers.contains { $0.name == "WWW-Authenticate" && $0.value == "Basic realm=\"mcescan-exporter\"" })
    }
}

@Suite("access control matrix (in-process)")
struct AccessControlTests {
    @Test("with basic_auth_users: every path needs credentials; authenticated peers may mutate from anywhere", arguments: [
        Case(method: "GET", path: "/metrics", peer: loopback4, auth: nil, status: 401, code: "unauthorized"),
        Case(method: "GET", path: "/", peer: loopback4, auth: nil, status: 401, code: "unauthorized"),
        Case(method: "GET", path: "/healthz", peer: remote4, auth: nil, status: 401, code: "unauthorized"),
        Case(method: "GET", path: "/api/v1/nodes", peer: remote4, auth: nil, status: 401, code: "unauthorized"),
        Case(method: "GET", path: "/no/such/path", peer: remote4, auth: nil, status: 401, code: "unauthorized"),
        Case(method: "GET", path: "/metrics", peer: remote4, auth: "bad", status: 401, code: "unauthorized"),
        Case(method: "GET", path: "/metrics", peer: remote4, auth: "garbage", status: 401, code: "unauthorized"),
        Case(method: "GET", path: "/metrics", peer: remote4, auth: "good", status: 200),
        Case(method: "HEAD", path: "/metrics", peer: remote6, auth: "good", status: 200),
        Case(method: "GET", path: "/metrics", peer: loopback4, auth: "good", status: 200),
        Case(method: "POST", path: "/api/v1/nodes/0/scan", peer: loopback4, auth: nil, contentType: "application/json", status: 401, code: "unauthorized"),
        Case(method: "POST", path: "/api/v1/nodes/0/scan", peer: remote4, auth: "bad", contentType: "application/json", status: 401, code: "unauthorized"),
        Case(method: "POST", path: "/api/v1/nodes/0/scan", peer: remote4, auth: "good", contentType: "application/json", status: 200),
        Case(method: "PATCH", path: "/api/v1/nodes/0", peer: remote6, auth: "good", host: "exporter.example:10120",
             contentType: "application/json", body: "{\"type\":1}", status: 200),
        Case(method: "PUT", path: "/mcescan/node0/pages_to_scan", peer: remote4, auth: "good", host: "10.0.0.5",
             contentType: "text/plain", body: "100\n", status: 200),
        Case(method: "PATCH", path: "/api/v1/nodes/0", peer: remote4, auth: "good", contentType: "text/plain", body: "{}",
             status: 415, code: "unsupported_media_type"),
    ])
    func withUsers(_ c: Case) throws {
        try check(c, users: true)
    }

    @Test("without users: reads from anywhere, mutations only from loopback with a loopback Host", arguments: [
        Case(method: "GET", path: "/metrics", peer: remote4, auth: nil, status: 200),
        Case(method: "GET", path: "/metrics", peer: loopback4, auth: nil, status: 200),
        Case(method: "GET", path: "/metrics", peer: remote4, auth: "good", status: 200),  // ignored, no users
        Case(method: "OPTIONS", path: "/api/v1/nodes", peer: remote4, auth: nil, status: 200),  // a read; the routes answer
        Case(method: "POST", path: "/metrics", peer: remote4, auth: nil, status: 403, code: "forbidden"),
        Case(method: "POST", path: "/api/v1/nodes/0/scan", peer: remote4, auth: nil, contentType: "application/json", status: 403, code: "forbidden"),
        Case(method: "PUT", path: "/mcescan/node0/type", peer: remote6, auth: nil, body: "3\n", status: 403, code: "forbidden"),
        Case(method: "DELETE", path: "/api/v1/nodes/0", peer: remote4, auth: nil, status: 403, code: "forbidden"),
        Case(method: "BREW", path: "/api/v1/nodes/0", peer: remote4, auth: nil, status: 403, code: "forbidden"),
        Case(method: "POST", path: "/api/v1/nodes/0/scan", peer: nil, auth: nil, contentType: "application/json", status: 403, code: "forbidden"),
        Case(method: "POST", path: "/api/v1/nodes/0/scan", peer: remote4, auth: "good", contentType: "application/json", status: 403, code: "forbidden"),
        Case(method: "POST", path: "/metrics", peer: loopback4, auth: nil, status: 200),
        Case(method: "POST", path: "/api/v1/nodes/0/scan", peer: loopback4, auth: nil, contentType: "application/json", status: 200),
        Case(method: "POST", path: "/api/v1/nodes/0/scan", peer: loopback6, auth: nil, host: "[::1]:10120", contentType: "application/json", status: 200),
        Case(method: "POST", path: "/api/v1/nodes/0/scan", peer: mapped4, auth: nil, host: "127.0.0.2", contentType: "application/json", status: 200),
        Case(method: "POST", path: "/api/v1/nodes/0/scan", peer: loopback4, auth: nil, host: nil, contentType: "application/json", status: 200),
        Case(method: "PATCH", path: "/api/v1/nodes", peer: loopback4, auth: nil, host: "LOCALHOST",
             contentType: "Application/JSON; charset=UTF-8", body: "{}", status: 200),
        // DNS rebinding: a page's own host name reaching loopback.
        Case(method: "POST", path: "/api/v1/nodes/0/scan", peer: loopback4, auth: nil, host: "evil.example",
             contentType: "application/json", status: 403, code: "forbidden"),
        Case(method: "PUT", path: "/mcescan/node0/type", peer: loopback4, auth: nil, host: "evil.example:10120", body: "1\n", status: 403, code: "forbidden"),
        Case(method: "POST", path: "/api/v1/nodes/0/scan", peer: loopback4, auth: nil, host: "localhost.evil.example",
             contentType: "application/json", status: 403, code: "forbidden"),
        Case(method: "POST", path: "/api/v1/nodes/0/scan", peer: loopback4, auth: nil, host: "127.0.0.1.evil.example",
             contentType: "application/json", status: 403, code: "forbidden"),
        // Content types: JSON for every /api/ mutation (body or not), text/plain or none for /mcescan/.
        Case(method: "POST", path: "/api/v1/nodes/0/scan", peer: loopback4, auth: nil, status: 415, code: "unsupported_media_type"),
        Case(method: "POST", path: "/api/v1/nodes/0/inject", peer: loopback4, auth: nil, contentType: "text/plain",
             body: "{\"kind\":\"bitflip\"}", status: 415, code: "unsupported_media_type"),
        Case(method: "POST", path: "/api/v1/nodes/0/inject", peer: loopback4, auth: nil, contentType: "application/x-www-form-urlencoded",
             body: "kind=bitflip", status: 415, code: "unsupported_media_type"),
        Case(method: "PATCH", path: "/api/v1/nodes/0", peer: loopback4, auth: nil, contentType: "application/json; charset=latin1",
             body: "{}", status: 415, code: "unsupported_media_type"),
        Case(method: "PATCH", path: "/api/v1/nodes/0", peer: loopback4, auth: nil, contentType: "application/jsonx",
             body: "{}", status: 415, code: "unsupported_media_type"),
        Case(method: "PUT", path: "/mcescan/node0/pages_to_scan", peer: loopback4, auth: nil, body: "100\n", status: 200),
        Case(method: "PUT", path: "/mcescan/node0/pages_to_scan", peer: loopback4, auth: nil, contentType: "text/plain; charset=utf-8",
             body: "100\n", status: 200),
        Case(method: "PUT", path: "/mcescan/node0/pages_to_scan", peer: loopback4, auth: nil, contentType: "application/json",
             body: "100", status: 415, code: "unsupported_media_type"),
        Case(method: "GET", path: "/api/v1/nodes", peer: loopback4, auth: nil, contentType: "text/plain", status: 200),
    ])
    func withoutUsers(_ c: Case) throws {
        try check(c, users: false)
    }

    @Test("the 403 body is exactly the documented one")
    func forbiddenBody() throws {
        let (response, _) = try run(Case(method: "POST", path: "/api/v1/nodes/0/scan", peer: remote4, auth: nil,
                                         contentType: "application/json", status: 403), users: false)
        #expect(String(decoding: response.body, as: UTF8.self) ==
            "{\"error\":{\"code\":\"forbidden\",\"message\":\"mutations are accepted only from loopback or with basic auth; set basic_auth_users in --web.config.file\"}}\n")
    }

    @Test("client text in log lines: control characters replaced, length bounded", arguments: [
        ("alice", "alice"), ("a\nb\r\u{1b}[31m", "a?b??[31m"), ("\u{7f}", "?"),
        (String(repeating: "x", count: 200), String(repeating: "x", count: 128) + "…"),
    ])
    func loggable(input: String, expected: String) {
        #expect(AccessControl.loggable(input) == expected)
    }

    @Test("loopback Host names", arguments: [
        ("localhost", true), ("localhost:10120", true), ("LocalHost.", true), ("127.0.0.1", true), ("127.1.2.3:80", true),
        ("[::1]", true), ("[::1]:10120", true),
        ("localhost.evil", false), ("evil.localhost", false), ("127.0.0.1.nip.io", false), ("128.0.0.1", false),
        ("127.0.0.256", false), ("127.0.0", false), ("[::2]:1", false), ("[::1]x", false), ("localhost:", false),
        ("localhost:abc", false), ("", false), ("0x7f.0.0.1", false),
    ])
    func loopbackHosts(host: String, loopback: Bool) {
        #expect(AccessControl.isLoopbackHost(host) == loopback)
    }
}
