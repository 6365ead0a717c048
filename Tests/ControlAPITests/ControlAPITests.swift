import Logging
import Synchronization
import Testing
@testable import MetricsExporter
import ScanWorkers
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

struct APIFixture {
    let surface: FakeSurface
    let server: HTTPServer
    let stateDir: String
    var port: UInt16 { server.boundAddresses[0].port }

    init(faultInjection: Bool = true, kernelPoison: Bool = false, surface: FakeSurface = FakeSurface()) throws {
        self.surface = surface
        stateDir = makeTempDir()
        let plane = ControlPlane(surface: surface, store: StateStore(directory: stateDir))
        let api = ControlAPI(plane: plane, faultInjection: faultInjection, kernelPoison: kernelPoison)
        let logger = Logger(label: "t") { _ in LineLogHandler(label: "t", format: .logfmt, level: .error, sink: LogSink()) }
        let handler = ExporterHandler(registry: MetricsRegistry(collectors: [], logger: logger), extraRoutes: [api])
        server = try HTTPServer(configuration: HTTPServerConfiguration(listenAddresses: [ListenAddress(host: "127.0.0.1", port: 0)]), handler: handler)
    }

    func close() {
        server.shutdown()
        _ = system("rm -rf \(stateDir)")
    }

    func send(_ method: String, _ path: String, json body: String? = nil, headers: [(String, String)]? = nil) throws -> APIResponse {
        let h = headers ?? (body != nil ? [("Content-Type", "application/json")] : [])
        return APIResponse(try RawHTTPClient.request(method, path, port: port, headers: h, body: Array((body ?? "").utf8)))
    }
}

struct APIResponse {
    var status: Int
    var headers: [(String, String)]
    var text: String
    init(_ r: RawResponse) {
        status = r.status
        headers = r.headers
        text = r.text
    }
    func header(_ n: String) -> String? { headers.first { $0.0.lowercased() == n.lowercased() }?.1 }
}

@Suite("Control API", .serialized)
struct ControlAPITests {
    @Test("GET nodes, node, types")
    func reads() throws {
        let f = try APIFixture()
        defer { f.close() }
        let nodes = try f.send("GET", "/api/v1/nodes")
        #expect(nodes.status == 200)
        #expect(nodes.header("Content-Type") == "application/json")
        #expect(nodes.text == """
        {"nodes":[{"node":0,"state":"running","config":{"pages_to_scan":4096,"scan_sleep_millisecs":10000,"type":3,"type_names":["arena","free"]},"stat":{"pages_scanned":100,"full_scans":3,"errors_found":0,"last_full_scan":"2026-11-18T11:06:40.000Z"}},\
        {"node":1,"state":"running","config":{"pages_to_scan":4096,"scan_sleep_millisecs":10000,"type":3,"type_names":["arena","free"]},"stat":{"pages_scanned":101,"full_scans":3,"errors_found":0,"last_full_scan":"2026-11-18T11:06:40.000Z"}}]}

        """)
        let one = try f.send("GET", "/api/v1/nodes/1")
        #expect(one.status == 200)
        #expect(one.text.hasPrefix("{\"node\":1,\"state\":\"running\""))
        let types = try f.send("GET", "/api/v1/types")
        #expect(types.text.hasPrefix("[{\"bit\":0,\"value\":1,\"name\":\"arena\""))
        #expect(types.text.contains("{\"bit\":2,\"value\":4,\"name\":\"hugetlb\""))
    }

    @Test("PATCH one node: applied, persisted, the other node untouched")
    func patchOne() throws {
        let f = try APIFixture()
        defer { f.close() }
        let r = try f.send("PATCH", "/api/v1/nodes/1", json: "{\"pages_to_scan\": 8192, \"type\": 5}")
        #expect(r.status == 200)
        #expect(r.text == "{\"node\":1,\"config\":{\"pages_to_scan\":8192,\"scan_sleep_millisecs\":10000,\"type\":5,\"type_names\":[\"arena\",\"hugetlb\"]}}\n")
        #expect(f.surface.controls[1]!.snapshot() == (try ScanConfig(pagesToScan: 8192, sleepMillis: 10000, type: 5)))
        #expect(f.surface.controls[0]!.snapshot() == (try ScanConfig()))
        let saved = try StateStore(directory: f.stateDir).load()
        #expect(saved?[1] == PersistedKnobs(pagesToScan: 8192, sleepMillis: 10000, type: 5))
        #expect(saved?[0] == PersistedKnobs(pagesToScan: 4096, sleepMillis: 10000, type: 3))
    }

    @Test("type by names; PATCH all nodes; PUT needs all three")
    func patchAllAndPut() throws {
        let f = try APIFixture()
        defer { f.close() }
        let all = try f.send("PATCH", "/api/v1/nodes", json: "{\"type\":\"arena,hugetlb\",\"scan_sleep_millisecs\":250}")
        #expect(all.status == 200)
        #expect(f.surface.configs.allSatisfy { $0.type == 5 && $0.sleepMillis == 250 })
        let put = try f.send("PUT", "/api/v1/nodes/0", json: "{\"pages_to_scan\":0,\"scan_sleep_millisecs\":0,\"type\":0}")
        #expect(put.status == 200)
        #expect(put.text.contains("\"type_names\":[]"))
        #expect(try f.send("GET", "/api/v1/nodes/0").text.contains("\"state\":\"parked\""))
    }

    @Test("POST scan wakes the worker: 202")
    func trigger() throws {
        let f = try APIFixture()
        defer { f.close() }
        let r = try f.send("POST", "/api/v1/nodes/0/scan", headers: [("Content-Type", "application/json")], bodyText: "")
        #expect(r.status == 202)
        #expect(r.text == "{\"node\":0,\"triggered\":true}\n")
        #expect(try f.send("POST", "/api/v1/nodes/0/scan", json: "{}").status == 202)
        // Even without a body a mutation needs the JSON content type (a browser must preflight it).
        #expect(try f.send("POST", "/api/v1/nodes/0/scan").status == 415)
    }

    @Test("events: after and limit")
    func events() throws {
        let f = try APIFixture()
        defer { f.close() }
        let r = try f.send("GET", "/api/v1/events?after=2&limit=2")
        #expect(r.status == 200)
        #expect(r.text.hasPrefix("{\"events\":[{\"id\":3,"))
        #expect(r.text.contains("{\"id\":4,"))
        #expect(!r.text.contains("{\"id\":5,"))
        #expect(r.text.hasSuffix(",\"next_after\":4,\"oldest_id\":1,\"truncated\":false}\n"))
        let none = try f.send("GET", "/api/v1/events?after=99")
        #expect(none.text == "{\"events\":[],\"next_after\":99,\"oldest_id\":1,\"truncated\":false}\n")
    }

    @Test("events: a reader behind the oldest event kept is told so")
    func eventsTruncated() throws {
        let f = try APIFixture(surface: FakeSurface(eventIDs: [40, 41, 42]))
        defer { f.close() }
        let behind = try f.send("GET", "/api/v1/events?after=10")
        #expect(behind.text.hasPrefix("{\"events\":[{\"id\":40,"))
        #expect(behind.text.hasSuffix(",\"next_after\":42,\"oldest_id\":40,\"truncated\":true}\n"))
        let current = try f.send("GET", "/api/v1/events?after=39")
        #expect(current.text.hasSuffix(",\"next_after\":42,\"oldest_id\":40,\"truncated\":false}\n"))
        let empty = try APIFixture(surface: FakeSurface(eventIDs: []))
        defer { empty.close() }
        #expect(try empty.send("GET", "/api/v1/events").text == "{\"events\":[],\"next_after\":0,\"oldest_id\":null,\"truncated\":false}\n")
    }

    @Test("inject: 202 with offsets; kernel poison needs its own flag")
    func inject() throws {
        let f = try APIFixture(faultInjection: true, kernelPoison: false)
        defer { f.close() }
        let r = try f.send("POST", "/api/v1/nodes/1/inject", json: "{\"kind\":\"poison\",\"count\":2}")
        #expect(r.status == 202)
        #expect(r.text == "{\"node\":1,\"kind\":\"poison\",\"count\":2,\"mechanism\":\"synthetic\",\"offsets\":[0,4096]}\n")
        #expect(f.surface.injected.withLock { $0 } == [InjectRequest(node: 1, kind: .poison, count: 2, mechanism: .synthetic)])
        let kernel = try f.send("POST", "/api/v1/nodes/1/inject", json: "{\"kind\":\"poison\",\"mechanism\":\"kernel\"}")
        #expect(kernel.status == 403)
        #expect(kernel.text.contains("\"code\":\"kernel_poison_disabled\""))
        #expect(f.surface.injected.withLock { $0.count } == 1)
    }

    @Test("inject refused when fault injection is off")
    func injectOff() throws {
        let f = try APIFixture(faultInjection: false)
        defer { f.close() }
        let r = try f.send("POST", "/api/v1/nodes/0/inject", json: "{\"kind\":\"bitflip\"}")
        #expect(r.status == 403)
        #expect(r.text.contains("--control.enable-fault-injection"))
    }

    @Test("an engine-side inject failure is reported with its status")
    func injectUnsupported() throws {
        let surface = FakeSurface(injectError: ControlError(501, "unsupported", "MADV_HWPOISON needs CONFIG_MEMORY_FAILURE"))
        let f = try APIFixture(faultInjection: true, kernelPoison: true, surface: surface)
        defer { f.close() }
        let r = try f.send("POST", "/api/v1/nodes/0/inject", json: "{\"kind\":\"poison\",\"mechanism\":\"kernel\"}")
        #expect(r.status == 501)
        #expect(r.text.contains("CONFIG_MEMORY_FAILURE"))
    }

    @Test("sysfs-shaped view: read and write knobs with curl-style text")
    func sysfsView() throws {
        let f = try APIFixture()
        defer { f.close() }
        #expect(try f.send("GET", "/mcescan/node0/pages_to_scan").text == "4096\n")
        let put = try f.send("PUT", "/mcescan/node0/pages_to_scan", headers: [("Content-Type", "application/x-www-form-urlencoded")], bodyText: "8192")
        #expect(put.status == 200)
        #expect(put.text == "8192\n")
        #expect(try f.send("PUT", "/mcescan/node1/type", headers: [], bodyText: "arena\n").text == "1\n")
        #expect(try f.send("PUT", "/mcescan/node1/scan_sleep_millisecs", headers: [], bodyText: "100").text == "100\n")
        // What `echo 2048 | curl --data-binary @-` sends, and the same from a CRLF editor.
        #expect(try f.send("PUT", "/mcescan/node1/pages_to_scan", headers: [], bodyText: "2048\n").text == "2048\n")
        #expect(try f.send("PUT", "/mcescan/node1/pages_to_scan", headers: [], bodyText: "2049\r\n").text == "2049\n")
        #expect(f.surface.controls[0]!.snapshot().pagesToScan == 8192)
        #expect(try f.send("GET", "/mcescan/node1/type").text == "1\n")
        #expect(try f.send("GET", "/mcescan/node1/full_scans").text == "3\n")
        #expect(try f.send("GET", "/mcescan/node1/stat").text == "state running\npages_scanned 101\nfull_scans 3\nerrors_found 0\n")
        #expect(try f.send("GET", "/mcescan").text == "node0\nnode1\n")
        #expect(try f.send("GET", "/mcescan/node0").text == "pages_to_scan\nscan_sleep_millisecs\ntype\nstat\nfull_scans\n")
        #expect(try StateStore(directory: f.stateDir).load()?[0]?.pagesToScan == 8192)
    }

    // MARK: - the table of bad requests

    struct Bad: CustomTestStringConvertible, Sendable {
        var method: String
        var path: String
        var body: String? = nil
        var contentType: String? = "application/json"
        var status: Int
        var code: String? = nil
        var field: String? = nil
        var plain: Bool = false
        var note: String = ""
        var testDescription: String { "\(method) \(path) \(note.isEmpty ? (body ?? "") : note) -> \(status) \(code ?? "")" }
    }

    static let bad: [Bad] = [
        // bodies
        Bad(method: "PATCH", path: "/api/v1/nodes/0", body: "", status: 400, code: "empty_body", note: "empty body"),
        Bad(method: "PATCH", path: "/api/v1/nodes/0", body: "   ", status: 400, code: "empty_body", note: "blank body"),
        Bad(method: "PATCH", path: "/api/v1/nodes/0", body: "{", status: 400, code: "malformed_json"),
        Bad(method: "PATCH", path: "/api/v1/nodes/0", body: "{\"type\":1}x", status: 400, code: "malformed_json", note: "trailing garbage"),
        Bad(method: "PATCH", path: "/api/v1/nodes/0", body: "{\"type\":1}{}", status: 400, code: "malformed_json", note: "two documents"),
        Bad(method: "PATCH", path: "/api/v1/nodes/0", body: "{'type':1}", status: 400, code: "malformed_json"),
        Bad(method: "PATCH", path: "/api/v1/nodes/0", body: "{\"type\":1,}", status: 400, code: "malformed_json"),
        Bad(method: "PATCH", path: "/api/v1/nodes/0", body: "{\"type\":1,\"type\":7}", status: 400, code: "duplicate_field", field: "type"),
        Bad(method: "PATCH", path: "/api/v1/nodes/0", body: "[1,2]", status: 400, code: "wrong_type", note: "array body"),
        Bad(method: "PATCH", path: "/api/v1/nodes/0", body: "7", status: 400, code: "wrong_type", note: "number body"),
        Bad(method: "PATCH", path: "/api/v1/nodes/0", body: "{}", status: 400, code: "empty_change"),
        Bad(method: "PATCH", path: "/api/v1/nodes/0", body: "{\"pages\":1}", status: 400, code: "unknown_field", field: "pages"),
        Bad(method: "PATCH", path: "/api/v1/nodes/0", body: "{\"type\":1,\"extra\":true}", status: 400, code: "unknown_field", field: "extra"),
        // types
        Bad(method: "PATCH", path: "/api/v1/nodes/0", body: "{\"pages_to_scan\":\"8192\"}", status: 400, code: "wrong_type", field: "pages_to_scan"),
        Bad(method: "PATCH", path: "/api/v1/nodes/0", body: "{\"pages_to_scan\":true}", status: 400, code: "wrong_type", field: "pages_to_scan"),
        Bad(method: "PATCH", path: "/api/v1/nodes/0", body: "{\"pages_to_scan\":null}", status: 400, code: "wrong_type", field: "pages_to_scan"),
        Bad(method: "PATCH", path: "/api/v1/nodes/0", body: "{\"pages_to_scan\":[1]}", status: 400, code: "wrong_type", field: "pages_to_scan"),
        Bad(method: "PATCH", path: "/api/v1/nodes/0", body: "{\"pages_to_scan\":1.5}", status: 400, code: "wrong_type", field: "pages_to_scan"),
        Bad(method: "PATCH", path: "/api/v1/nodes/0", body: "{\"pages_to_scan\":100.0}", status: 400, code: "wrong_type", field: "pages_to_scan"),
        Bad(method: "PATCH", path: "/api/v1/nodes/0", body: "{\"pages_to_scan\":1e3}", status: 400, code: "wrong_type", field: "pages_to_scan"),
        Bad(method: "PATCH", path: "/api/v1/nodes/0", body: "{\"type\":\"arena,bogus\"}", status: 400, code: "out_of_range", field: "type"),
        Bad(method: "PATCH", path: "/api/v1/nodes/0", body: "{\"type\":{}}", status: 400, code: "wrong_type", field: "type"),
        // ranges
        Bad(method: "PATCH", path: "/api/v1/nodes/0", body: "{\"pages_to_scan\":-1}", status: 400, code: "out_of_range", field: "pages_to_scan"),
        Bad(method: "PATCH", path: "/api/v1/nodes/0", body: "{\"pages_to_scan\":4194305}", status: 400, code: "out_of_range", field: "pages_to_scan"),
        Bad(method: "PATCH", path: "/api/v1/nodes/0", body: "{\"pages_to_scan\":99999999999999999999}", status: 400, code: "out_of_range", field: "pages_to_scan"),
        Bad(method: "PATCH", path: "/api/v1/nodes/0", body: "{\"scan_sleep_millisecs\":86400001}", status: 400, code: "out_of_range", field: "scan_sleep_millisecs"),
        Bad(method: "PATCH", path: "/api/v1/nodes/0", body: "{\"scan_sleep_millisecs\":-5}", status: 400, code: "out_of_range", field: "scan_sleep_millisecs"),
        Bad(method: "PATCH", path: "/api/v1/nodes/0", body: "{\"type\":8}", status: 400, code: "out_of_range", field: "type"),
        Bad(method: "PATCH", path: "/api/v1/nodes/0", body: "{\"type\":-1}", status: 400, code: "out_of_range", field: "type"),
        Bad(method: "PATCH", path: "/api/v1/nodes/0", body: "{\"pages_to_scan\":8192,\"type\":9}", status: 400, code: "out_of_range", field: "type", note: "one bad field of two"),
        Bad(method: "PATCH", path: "/api/v1/nodes", body: "{\"type\":99}", status: 400, code: "out_of_range", field: "type", note: "all nodes"),
        Bad(method: "PUT", path: "/api/v1/nodes/0", body: "{\"pages_to_scan\":1,\"type\":1}", status: 400, code: "missing_field", field: "scan_sleep_millisecs"),
        Bad(method: "PUT", path: "/api/v1/nodes", body: "{\"type\":1}", status: 400, code: "missing_field", field: "pages_to_scan"),
        Bad(method: "POST", path: "/api/v1/nodes/0/inject", body: "{\"kind\":\"meltdown\"}", status: 400, code: "wrong_type", field: "kind"),
        Bad(method: "POST", path: "/api/v1/nodes/0/inject", body: "{\"kind\":\"poison\",\"count\":0}", status: 400, code: "out_of_range", field: "count"),
        Bad(method: "POST", path: "/api/v1/nodes/0/inject", body: "{\"kind\":\"poison\",\"count\":65}", status: 400, code: "out_of_range", field: "count"),
        Bad(method: "POST", path: "/api/v1/nodes/0/inject", body: "{\"count\":1}", status: 400, code: "missing_field", field: "kind"),
        Bad(method: "POST", path: "/api/v1/nodes/0/inject", body: "{\"kind\":\"bitflip\",\"mechanism\":\"kernel\"}", status: 400, code: "out_of_range", field: "mechanism"),
        Bad(method: "POST", path: "/api/v1/nodes/0/inject", body: "{\"kind\":\"poison\",\"mechanism\":\"laser\"}", status: 400, code: "wrong_type", field: "mechanism"),
        Bad(method: "POST", path: "/api/v1/nodes/0/scan", body: "{\"now\":true}", status: 400, code: "unknown_field", field: "now"),
        Bad(method: "GET", path: "/api/v1/events?limit=0", body: nil, status: 400, code: "invalid_query", field: "limit"),
        Bad(method: "GET", path: "/api/v1/events?limit=1001", body: nil, status: 400, code: "invalid_query", field: "limit"),
        Bad(method: "GET", path: "/api/v1/events?after=-1", body: nil, status: 400, code: "invalid_query", field: "after"),
        Bad(method: "GET", path: "/api/v1/events?after=abc", body: nil, status: 400, code: "invalid_query", field: "after"),
        Bad(method: "GET", path: "/api/v1/events?since=1", body: nil, status: 400, code: "invalid_query", field: "since"),
        // paths
        Bad(method: "PATCH", path: "/api/v1/nodes/7", body: "{\"type\":1}", status: 404, code: "unknown_node"),
        Bad(method: "GET", path: "/api/v1/nodes/7", body: nil, status: 404, code: "unknown_node"),
        Bad(method: "GET", path: "/api/v1/nodes/abc", body: nil, status: 404, code: "not_found"),
        Bad(method: "GET", path: "/api/v1/nodes/01", body: nil, status: 404, code: "not_found"),
        Bad(method: "GET", path: "/api/v1/nodes/-1", body: nil, status: 404, code: "not_found"),
        Bad(method: "GET", path: "/api/v1/nodes/0/extra", body: nil, status: 404, code: "not_found"),
        Bad(method: "GET", path: "/api/v2/nodes", body: nil, status: 404, code: "not_found"),
        Bad(method: "POST", path: "/api/v1/nodes/9/scan", body: nil, status: 404, code: "unknown_node"),
        // methods
        Bad(method: "DELETE", path: "/api/v1/nodes/0", body: nil, status: 405, code: "method_not_allowed"),
        Bad(method: "DELETE", path: "/api/v1/nodes/0", body: nil, contentType: nil, status: 405, code: "method_not_allowed", note: "no content type"),
        Bad(method: "TRACE", path: "/api/v1/nodes/0", body: nil, contentType: nil, status: 405, code: "method_not_allowed", note: "no content type"),
        Bad(method: "DELETE", path: "/api/v1/nodes", body: nil, contentType: nil, status: 405, code: "method_not_allowed", note: "no content type"),
        Bad(method: "POST", path: "/api/v1/nodes", body: "{\"type\":1}", status: 405, code: "method_not_allowed"),
        Bad(method: "GET", path: "/api/v1/nodes/0/scan", body: nil, status: 405, code: "method_not_allowed"),
        Bad(method: "PUT", path: "/api/v1/types", body: "{}", status: 405, code: "method_not_allowed"),
        Bad(method: "POST", path: "/api/v1/events", body: "{}", status: 405, code: "method_not_allowed"),
        // headers
        Bad(method: "PATCH", path: "/api/v1/nodes/0", body: "{\"type\":1}", contentType: nil, status: 415, code: "unsupported_media_type", note: "no content type"),
        Bad(method: "PATCH", path: "/api/v1/nodes/0", body: "{\"type\":1}", contentType: "text/plain", status: 415, code: "unsupported_media_type"),
        Bad(method: "PATCH", path: "/api/v1/nodes/0", body: "{\"type\":1}", contentType: "application/x-www-form-urlencoded", status: 415, code: "unsupported_media_type", note: "curl -d default"),
        // sizes
        Bad(method: "PATCH", path: "/api/v1/nodes/0", body: "{\"type\":1" + String(repeating: " ", count: 70_000) + "}", status: 413, code: "body_too_large", note: "70 KB body"),
        // sysfs-shaped view
        Bad(method: "PUT", path: "/mcescan/node0/pages_to_scan", body: "lots", contentType: nil, status: 400, plain: true),
        Bad(method: "PUT", path: "/mcescan/node0/pages_to_scan", body: "-1", contentType: nil, status: 400, plain: true),
        Bad(method: "PUT", path: "/mcescan/node0/pages_to_scan", body: "4194305", contentType: nil, status: 400, plain: true),
        Bad(method: "PUT", path: "/mcescan/node0/pages_to_scan", body: "", contentType: nil, status: 400, plain: true, note: "empty"),
        Bad(method: "PUT", path: "/mcescan/node0/type", body: "8", contentType: nil, status: 400, plain: true),
        Bad(method: "PUT", path: "/mcescan/node0/type", body: "arena,nope", contentType: nil, status: 400, plain: true),
        Bad(method: "PUT", path: "/mcescan/node0/stat", body: "1", contentType: nil, status: 405, plain: true),
        Bad(method: "PUT", path: "/mcescan/node0/full_scans", body: "1", contentType: nil, status: 405, plain: true),
        Bad(method: "PUT", path: "/mcescan/node0/pages_to_scan", body: "{\"v\":1}", contentType: "application/json", status: 415, plain: true),
        Bad(method: "DELETE", path: "/mcescan/node0/type", body: nil, contentType: nil, status: 405, plain: true),
        Bad(method: "GET", path: "/mcescan/node9/type", body: nil, contentType: nil, status: 404, plain: true),
        Bad(method: "GET", path: "/mcescan/node0/bogus", body: nil, contentType: nil, status: 404, plain: true),
        Bad(method: "GET", path: "/mcescan/nodeX/type", body: nil, contentType: nil, status: 404, plain: true),
    ]

    @Test("bad requests: documented status and error, daemon alive, configs and state file unchanged", arguments: bad)
    func badRequest(_ c: Bad) throws {
        let f = try APIFixture()
        defer { f.close() }
        // A known state on disk first, so "unchanged" covers the file too.
        #expect(try f.send("PATCH", "/api/v1/nodes", json: "{\"pages_to_scan\":1000}").status == 200)
        let before = f.surface.configs
        let fileBefore = try StateStore(directory: f.stateDir).load()
        let headers = c.contentType.map { [("Content-Type", $0)] } ?? []
        let r = try f.send(c.method, c.path, headers: headers, bodyText: c.body ?? "")
        #expect(r.status == c.status, "\(r.text)")
        if c.plain {
            #expect(r.text.hasPrefix("error: "), "\(r.text)")
        } else {
            #expect(r.header("Content-Type") == "application/json")
            if let code = c.code { #expect(r.text.contains("{\"error\":{\"code\":\"\(code)\""), "\(r.text)") }
            if let field = c.field { #expect(r.text.contains("\"field\":\"\(field)\""), "\(r.text)") }
            #expect(r.text.contains("\"message\":\""))
        }
        if c.status == 405 { #expect(r.header("Allow") != nil) }
        #expect(f.surface.configs == before)
        #expect(try StateStore(directory: f.stateDir).load() == fileBefore)
        #expect(try f.send("GET", "/healthz").status == 200)
    }

    @Test("the table has at least 40 cases")
    func tableSize() {
        #expect(Self.bad.count >= 40)
    }
}

extension APIFixture {
    func send(_ method: String, _ path: String, headers: [(String, String)], bodyText: String) throws -> APIResponse {
        APIResponse(try RawHTTPClient.request(method, path, port: port, headers: headers, body: Array(bodyText.utf8)))
    }
}
