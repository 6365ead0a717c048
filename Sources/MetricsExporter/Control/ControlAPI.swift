import HostFS
import ScanWorkers

/// The JSON control API (`/api/v1/…`) and the sysfs-shaped text view (`/mcescan/node{n}/…`),
/// mounted beside the exporter's own routes. Every knob change goes through `ControlPlane`
/// (validate all, persist, apply, wake).
public final class ControlAPI: HTTPRoute {
    let plane: ControlPlane
    let faultInjection: Bool
    let kernelPoison: Bool

    /// - Parameters:
    ///   - faultInjection: `--control.enable-fault-injection` (else `inject` answers 403).
    ///   - kernelPoison: `--control.enable-kernel-poison` (else mechanism `kernel` answers 403).
    public init(plane: ControlPlane, faultInjection: Bool, kernelPoison: Bool) {
        self.plane = plane
        self.faultInjection = faultInjection
        self.kernelPoison = kernelPoison
    }

    var surface: any ControlSurface { plane.surface }

    public func respond(to request: HTTPRequest) -> HTTPResponse? {
        let path = request.path
        if path == "/api/v1" || path.hasPrefix("/api/v1/") {
            return api(request, Array(path.split(separator: "/", omittingEmptySubsequences: false).dropFirst(3)))
        }
        if path == "/mcescan" || path.hasPrefix("/mcescan/") {
            return sysfsView(request, Array(path.split(separator: "/", omittingEmptySubsequences: false).dropFirst(2)))
        }
        return nil
    }

    // MARK: - JSON API

    private func api(_ request: HTTPRequest, _ parts: [Substring]) -> HTTPResponse {
        do throws(ControlError) {
            let p = parts.map(String.init)
            if p == ["nodes"] {
                switch request.method {
                case "GET", "HEAD": return json(200, nodesJSON(surface.nodes))
                case "PATCH", "PUT":
                    let change = try decodeChange(request, requireAll: request.method == "PUT")
                    let applied = try plane.apply(change, to: nil)
                    return json(200, "{\"nodes\":[" + applied.map { nodeConfigJSON($0.node, $0.config) }.joined(separator: ",") + "]}")
                default: return methodNotAllowed(["GET", "HEAD", "PATCH", "PUT"])
                }
            }
            if p.count == 2, p[0] == "nodes" {
                let node = try nodeID(p[1])
                switch request.method {
                case "GET", "HEAD": return json(200, nodeJSON(node) ?? "{}")
                case "PATCH", "PUT":
                    let change = try decodeChange(request, requireAll: request.method == "PUT")
                    let applied = try plane.apply(change, to: [node])
                    return json(200, nodeConfigJSON(applied[0].node, applied[0].config))
                default: return methodNotAllowed(["GET", "HEAD", "PATCH", "PUT"])
                }
            }
            if p.count == 3, p[0] == "nodes", p[2] == "scan" {
                let node = try nodeID(p[1])
                guard request.method == "POST" else { return methodNotAllowed(["POST"]) }
                try requireEmptyObject(request)
                surface.control(node: node)?.trigger()
                return json(202, "{\"node\":\(node),\"triggered\":true}")
            }
            if p.count == 3, p[0] == "nodes", p[2] == "inject" {
                let node = try nodeID(p[1])
                guard request.method == "POST" else { return methodNotAllowed(["POST"]) }
                return try inject(request, node: node)
            }
            if p == ["types"] {
                guard request.method == "GET" || request.method == "HEAD" else { return methodNotAllowed(["GET", "HEAD"]) }
                return json(200, typesJSON())
            }
            if p == ["events"] {
                guard request.method == "GET" || request.method == "HEAD" else { return methodNotAllowed(["GET", "HEAD"]) }
                return try events(request)
            }
            return HTTPResponse.error(404, code: "not_found", message: "no such path: \(request.path) (see /api/v1/nodes, /api/v1/types, /api/v1/events)")
        } catch {
            return error.response
        }
    }

    private func nodeID(_ text: String) throws(ControlError) -> Int {
        guard let node = Int(text), node >= 0, String(node) == text else {
            throw ControlError(404, "not_found", "\"\(text)\" is not a node number")
        }
        guard surface.control(node: node) != nil else {
            throw ControlError(404, "unknown_node", "node \(node) is not scanned (scanned nodes: \(surface.nodes.map(String.init).joined(separator: ", ")))")
        }
        return node
    }

    /// Parses a JSON object body after the content-type check.
    private func jsonObject(_ request: HTTPRequest) throws(ControlError) -> [(key: String, value: JSONValue)] {
        // The same rule AccessControl applies in front of every route (kept here too, so the API
        // is correct on its own).
        if let refusal = AccessControl.requireJSON(request) {
            throw ControlError(refusal)
        }
        let value: JSONValue
        do {
            value = try StrictJSONParser.parse(request.body)
        } catch {
            switch error.code {
            case .empty: throw ControlError(400, "empty_body", error.message)
            case .duplicateKey: throw ControlError(400, "duplicate_field", error.description, field: error.key)
            default: throw ControlError(400, "malformed_json", error.description)
            }
        }
        guard case .object(let members) = value else {
            throw ControlError(400, "wrong_type", "the body must be a JSON object, got \(value.typeName)")
        }
        return members
    }

    private func requireEmptyObject(_ request: HTTPRequest) throws(ControlError) {
        guard !request.body.isEmpty else {
            if let refusal = AccessControl.requireJSON(request) { throw ControlError(refusal) }
            return
        }
        let members = try jsonObject(request)
        if let first = members.first {
            throw ControlError(400, "unknown_field", "this call takes no fields", field: first.key)
        }
    }

    /// Reads an integer field strictly: a JSON integer literal within Int, else a 400 naming it.
    private func integer(_ value: JSONValue, field: String) throws(ControlError) -> Int {
        switch value.integer {
        case .value(let v)?: return v
        case .overflow?: throw ControlError(400, "out_of_range", "\(field): the number does not fit in 64 bits", field: field)
        case .notInteger?: throw ControlError(400, "wrong_type", "\(field): must be an integer (no fraction or exponent)", field: field)
        case nil: throw ControlError(400, "wrong_type", "\(field): must be an integer, got \(value.typeName)", field: field)
        }
    }

    static let knobFields = ["pages_to_scan", "scan_sleep_millisecs", "type"]

    func decodeChange(_ request: HTTPRequest, requireAll: Bool) throws(ControlError) -> ControlPlane.Change {
        let members = try jsonObject(request)
        var change = ControlPlane.Change()
        for (key, value) in members {
            switch key {
            case "pages_to_scan": change.pagesToScan = try integer(value, field: key)
            case "scan_sleep_millisecs": change.sleepMillis = try integer(value, field: key)
            case "type":
                if case .string(let names) = value {
                    do { change.type = try ScanConfig.parseType(names) } catch {
                        throw ControlError(400, "out_of_range", error.message, field: "type")
                    }
                } else {
                    change.type = try integer(value, field: key)
                }
            default:
                throw ControlError(400, "unknown_field", "unknown field \"\(key)\" (fields: \(Self.knobFields.joined(separator: ", ")))", field: key)
            }
        }
        if requireAll {
            for (field, present) in zip(Self.knobFields, [change.pagesToScan != nil, change.sleepMillis != nil, change.type != nil]) where !present {
                throw ControlError(400, "missing_field", "PUT needs all of \(Self.knobFields.joined(separator: ", ")); use PATCH to change some", field: field)
            }
        } else if members.isEmpty {
            throw ControlError(400, "empty_change", "name at least one of \(Self.knobFields.joined(separator: ", "))")
        }
        return change
    }

    private func inject(_ request: HTTPRequest, node: Int) throws(ControlError) -> HTTPResponse {
        guard faultInjection else {
            throw ControlError(403, "fault_injection_disabled", "fault injection is off; start the exporter with --control.enable-fault-injection")
        }
        let members = try jsonObject(request)
        var kind: InjectRequest.Kind?
        var count = 1
        var mechanism = InjectRequest.Mechanism.synthetic
        for (key, value) in members {
            switch key {
            case "kind":
                guard case .string(let s) = value, let k = InjectRequest.Kind(rawValue: s) else {
                    throw ControlError(400, "wrong_type", "kind: one of \"bitflip\", \"poison\"", field: key)
                }
                kind = k
            case "count":
                count = try integer(value, field: key)
                guard (1...64).contains(count) else { throw ControlError(400, "out_of_range", "count: \(count) is out of range (1-64)", field: key) }
            case "mechanism":
                guard case .string(let s) = value, let m = InjectRequest.Mechanism(rawValue: s) else {
                    throw ControlError(400, "wrong_type", "mechanism: one of \"synthetic\", \"kernel\"", field: key)
                }
                mechanism = m
            default:
                throw ControlError(400, "unknown_field", "unknown field \"\(key)\" (fields: kind, count, mechanism)", field: key)
            }
        }
        guard let kind else { throw ControlError(400, "missing_field", "kind is required (\"bitflip\" or \"poison\")", field: "kind") }
        if mechanism == .kernel {
            guard kind == .poison else {
                throw ControlError(400, "out_of_range", "mechanism \"kernel\" applies to kind \"poison\" only", field: "mechanism")
            }
            guard kernelPoison else {
                throw ControlError(403, "kernel_poison_disabled",
                                   "mechanism \"kernel\" uses MADV_HWPOISON and retires real pages until reboot; start the exporter with --control.enable-kernel-poison to allow it")
            }
        }
        let outcome = try surface.inject(InjectRequest(node: node, kind: kind, count: count, mechanism: mechanism))
        return json(202, "{\"node\":\(node),\"kind\":\"\(kind.rawValue)\",\"count\":\(count),\"mechanism\":\"\(mechanism.rawValue)\"," +
                    "\"offsets\":[\(outcome.offsets.map(String.init).joined(separator: ","))]}")
    }

    private func events(_ request: HTTPRequest) throws(ControlError) -> HTTPResponse {
        var after: UInt64 = 0
        var limit = 100
        for (name, value) in request.query {
            switch name {
            case "after":
                guard let v = value.flatMap({ UInt64($0) }) else {
                    throw ControlError(400, "invalid_query", "after: must be an event id (an integer >= 0)", field: "after")
                }
                after = v
            case "limit":
                guard let v = value.flatMap({ Int($0) }), (1...1000).contains(v) else {
                    throw ControlError(400, "invalid_query", "limit: must be an integer from 1 to 1000", field: "limit")
                }
                limit = v
            default:
                throw ControlError(400, "invalid_query", "unknown query parameter \"\(name)\" (after, limit)", field: name)
            }
        }
        let events = surface.events(after: after, limit: limit)
        let lines = events.map { $0.jsonLine.trimmingCharacters(in: "\n") }
        let next = events.last?.id ?? after
        // Only the newest events are kept in memory: a reader that fell behind is told that
        // events between `after` and the oldest one kept are in events.jsonl only.
        let oldest = surface.events(after: 0, limit: 1).first?.id
        let truncated = oldest.map { after + 1 < $0 } ?? false
        return json(200, "{\"events\":[" + lines.joined(separator: ",") + "],\"next_after\":\(next)," +
                    "\"oldest_id\":\(oldest.map(String.init) ?? "null"),\"truncated\":\(truncated)}")
    }

    // MARK: - sysfs-shaped view

    static let readOnlyFiles = ["stat", "full_scans"]

    private func sysfsView(_ request: HTTPRequest, _ parts: [Substring]) -> HTTPResponse {
        let text = "text/plain; charset=utf-8"
        if parts.isEmpty || parts == [""] {
            guard request.method == "GET" || request.method == "HEAD" else { return methodNotAllowed(["GET", "HEAD"], plain: true) }
            return HTTPResponse(status: 200, contentType: text, body: surface.nodes.map { "node\($0)\n" }.joined())
        }
        guard parts[0].hasPrefix("node"), let node = Int(parts[0].dropFirst(4)), String(node) == parts[0].dropFirst(4) else {
            return plainError(404, "no such path: \(request.path)")
        }
        guard let control = surface.control(node: node) else {
            return plainError(404, "node \(node) is not scanned (scanned nodes: \(surface.nodes.map(String.init).joined(separator: ", ")))")
        }
        if parts.count == 1 || (parts.count == 2 && parts[1].isEmpty) {
            guard request.method == "GET" || request.method == "HEAD" else { return methodNotAllowed(["GET", "HEAD"], plain: true) }
            return HTTPResponse(status: 200, contentType: text, body: (Self.knobFields + Self.readOnlyFiles).map { "\($0)\n" }.joined())
        }
        guard parts.count == 2 else { return plainError(404, "no such path: \(request.path)") }
        let file = String(parts[1])
        if Self.readOnlyFiles.contains(file) {
            guard request.method == "GET" || request.method == "HEAD" else { return methodNotAllowed(["GET", "HEAD"], plain: true) }
            let status = surface.status(node: node)
            if file == "full_scans" { return HTTPResponse(status: 200, contentType: text, body: "\(status?.fullScans ?? 0)\n") }
            var lines = "state \(status?.state ?? "unknown")\n"
            for (name, value) in status?.stat ?? [] { lines += "\(name) \(value)\n" }
            return HTTPResponse(status: 200, contentType: text, body: lines)
        }
        guard Self.knobFields.contains(file) else { return plainError(404, "no such file: \(file) (files: \((Self.knobFields + Self.readOnlyFiles).joined(separator: ", ")))") }
        switch request.method {
        case "GET", "HEAD":
            let c = control.snapshot()
            let value = file == "pages_to_scan" ? c.pagesToScan : file == "type" ? c.type : c.sleepMillis
            return HTTPResponse(status: 200, contentType: text, body: "\(value)\n")
        case "PUT":
            let type = (request.header("Content-Type") ?? "").split(separator: ";").first.map { $0.trimmingWhitespace().lowercased() } ?? ""
            guard ["", "text/plain", "application/x-www-form-urlencoded"].contains(type) else {
                return plainError(415, "send the value as text/plain (got \"\(type)\")")
            }
            guard let raw = String(validating: request.body, as: UTF8.self) else { return plainError(400, "\(file): the value is not UTF-8 text") }
            let value = raw.trimmingCharacters(in: " \t\r\n")
            guard !value.isEmpty else { return plainError(400, "\(file): empty value; send a number, e.g. curl -X PUT --data 8192 …/\(file)") }
            var change = ControlPlane.Change()
            do throws(ControlError) {
                switch file {
                case "type":
                    do { change.type = try ScanConfig.parseType(value) } catch {
                        throw ControlError(400, "out_of_range", error.message, field: "type")
                    }
                default:
                    guard let n = Int(value) else {
                        throw ControlError(400, value.allSatisfy({ $0.isNumber || $0 == "-" }) ? "out_of_range" : "wrong_type",
                                           "\(file): \"\(value.prefix(40))\" is not an integer in range", field: file)
                    }
                    if file == "pages_to_scan" { change.pagesToScan = n } else { change.sleepMillis = n }
                }
                let applied = try plane.apply(change, to: [node])[0].config
                let now = file == "pages_to_scan" ? applied.pagesToScan : file == "type" ? applied.type : applied.sleepMillis
                return HTTPResponse(status: 200, contentType: text, body: "\(now)\n")
            } catch {
                return plainError(error.status, error.message)
            }
        default:
            return methodNotAllowed(["GET", "HEAD", "PUT"], plain: true)
        }
    }

    // MARK: - rendering

    private func json(_ status: Int, _ body: String) -> HTTPResponse {
        HTTPResponse(status: status, contentType: "application/json", body: body + "\n")
    }

    private func plainError(_ status: Int, _ message: String) -> HTTPResponse {
        HTTPResponse(status: status, contentType: "text/plain; charset=utf-8", body: "error: \(message)\n")
    }

    private func methodNotAllowed(_ allowed: [String], plain: Bool = false) -> HTTPResponse {
        let list = allowed.joined(separator: ", ")
        if plain {
            var r = plainError(405, "method not allowed; allowed: \(list)")
            r.headers.append(("Allow", list))
            return r
        }
        return HTTPResponse.error(405, code: "method_not_allowed", message: "allowed methods: \(list)", headers: [("Allow", list)])
    }

    func configJSON(_ c: ScanConfig) -> String {
        "{\"pages_to_scan\":\(c.pagesToScan),\"scan_sleep_millisecs\":\(c.sleepMillis),\"type\":\(c.type)," +
            "\"type_names\":[" + ScanConfig.typeNames(c.type).map { "\"\($0)\"" }.joined(separator: ",") + "]}"
    }

    func nodeConfigJSON(_ node: Int, _ c: ScanConfig) -> String {
        "{\"node\":\(node),\"config\":\(configJSON(c))}"
    }

    func nodesJSON(_ nodes: [Int]) -> String {
        "{\"nodes\":[" + nodes.compactMap(nodeJSON).joined(separator: ",") + "]}"
    }

    /// `{"node":N,"state":…,"config":{…},"stat":{…}}`, nil for a node that is not scanned.
    func nodeJSON(_ node: Int) -> String? {
            guard let control = surface.control(node: node) else { return nil }
            let status = surface.status(node: node)
            var stat = (status?.stat ?? []).map { "\(jsonString($0.name)):\($0.value)" }
            stat.append("\"last_full_scan\":" + (status?.lastFullScan.map { jsonString(formatRFC3339($0)) } ?? "null"))
            var item = "{\"node\":\(node),\"state\":\(jsonString(status?.state ?? "unknown")),\"config\":\(configJSON(control.snapshot()))," +
                "\"stat\":{" + stat.joined(separator: ",") + "}"
            if let failure = status?.failure { item += ",\"failure\":\(jsonString(failure))" }
            return item + "}"
    }

    func typesJSON() -> String {
        let descriptions: [MemoryType: String] = [
            .arena: "a pinned arena of --scan.arena-bytes per node, verified and rewritten every pass",
            .free: "free memory of the node, a chunk at a time, backing off on pressure and the reserve",
            .hugetlb: "free huge pages of the node's hugetlb pool",
        ]
        return "[" + MemoryType.allCases.map { t in
            "{\"bit\":\(t.bit),\"value\":\(t.rawValue),\"name\":\"\(t.name)\",\"description\":\(jsonString(descriptions[t] ?? ""))}"
        }.joined(separator: ",") + "]"
    }
}
