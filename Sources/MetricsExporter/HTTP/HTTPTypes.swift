/// One HTTP request, fully read (headers and body) before a handler sees it.
public struct HTTPRequest: Sendable {
    public var method: String
    /// The path without the query string (percent-decoding left to the handler).
    public var path: String
    /// Query arguments in order (`?after=3&limit=10`); a key without `=` has a nil value.
    public var query: [(name: String, value: String?)]
    /// Header names lower-cased, in the order received.
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]
    /// The peer's address, when known.
    public var peer: PeerAddress?

    public init(method: String, path: String, query: [(name: String, value: String?)] = [],
                headers: [(name: String, value: String)] = [], body: [UInt8] = [], peer: PeerAddress? = nil) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers.map { ($0.name.lowercased(), $0.value) }
        self.body = body
        self.peer = peer
    }

    /// The first header of that name (case-insensitive), or nil.
    public func header(_ name: String) -> String? {
        let lower = name.lowercased()
        return headers.first { $0.name == lower }?.value
    }

    /// The first query argument of that name, or nil.
    public func queryValue(_ name: String) -> String?? {
        guard let item = query.first(where: { $0.name == name }) else { return nil }
        return .some(item.value)
    }
}

/// A peer's IP address, as the server saw it.
public struct PeerAddress: Sendable, Hashable, CustomStringConvertible {
    public enum Family: Sendable { case ipv4, ipv6 }
    public var family: Family
    /// Network-order address bytes (4 or 16).
    public var bytes: [UInt8]

    public init(family: Family, bytes: [UInt8]) {
        self.family = family
        self.bytes = bytes
    }

    /// 127.0.0.0/8, ::1, or an IPv4-mapped loopback address.
    public var isLoopback: Bool {
        switch family {
        case .ipv4: return bytes.first == 127
        case .ipv6:
            if bytes == [UInt8](repeating: 0, count: 15) + [1] { return true }
            let mapped = [UInt8](repeating: 0, count: 10) + [0xff, 0xff]
            return Array(bytes.prefix(12)) == mapped && bytes[12] == 127
        }
    }

    public var description: String {
        switch family {
        case .ipv4: return bytes.map(String.init).joined(separator: ".")
        case .ipv6:
            var groups: [String] = []
            for i in stride(from: 0, to: 16, by: 2) {
                groups.append(String(UInt16(bytes[i]) << 8 | UInt16(bytes[i + 1]), radix: 16))
            }
            return groups.joined(separator: ":")
        }
    }
}

/// One HTTP response.
public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public init(status: Int, headers: [(name: String, value: String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    public init(status: Int, contentType: String, body: String) {
        self.init(status: status, headers: [("Content-Type", contentType)], body: Array(body.utf8))
    }

    /// The one error shape of the API: `{"error":{"code":…,"message":…,"field":…}}`.
    public static func error(_ status: Int, code: String, message: String, field: String? = nil,
                             headers: [(name: String, value: String)] = []) -> HTTPResponse {
        var json = "{\"error\":{\"code\":" + jsonString(code) + ",\"message\":" + jsonString(message)
        if let field { json += ",\"field\":" + jsonString(field) }
        json += "}}\n"
        return HTTPResponse(status: status, headers: [("Content-Type", "application/json")] + headers, body: Array(json.utf8))
    }
}

/// Something that answers requests. Called on libmicrohttpd's threads, concurrently.
public protocol HTTPHandler: Sendable {
    func handle(_ request: HTTPRequest) -> HTTPResponse
}

/// A JSON string literal for `s` (quotes, backslashes and control characters escaped).
public func jsonString(_ s: String) -> String {
    var out = "\""
    out.reserveCapacity(s.utf8.count + 2)
    for scalar in s.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if scalar.value < 0x20 {
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out + "\""
}
