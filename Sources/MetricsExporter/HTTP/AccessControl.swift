import Logging

/// The access rules (docs/operations.md, "Who may change things"), as a decorator around the exporter's handler (the control API and
/// the sysfs-shaped view mount as `HTTPRoute`s inside it and need no checks of their own).
///
/// In order, for every request:
/// 1. **Authentication** (only when `basic_auth_users` is configured): every path needs valid
///    credentials, else 401 with `WWW-Authenticate: Basic realm="mcescan-exporter"`.
/// 2. **Mutation guard**: a method other than GET, HEAD or OPTIONS is a mutation. It is accepted from
///    an authenticated peer, or from a loopback peer whose `Host` header names a loopback host
///    (`localhost`, `127.x.y.z`, `[::1]`; checking Host stops DNS-rebinding pages, which reach
///    loopback with their own host name); otherwise 403 `forbidden` with how to enable it.
/// 3. **Content type** (enforced here, keyed by path prefix, so routes need not call it):
///    mutations under `/api/` need `Content-Type: application/json` (optionally `; charset=utf-8`),
///    body or not; mutations under `/mcescan/` take `text/plain`, `application/x-www-form-urlencoded` (what
///    `curl --data` sends; the view takes only PUT, which browsers always preflight) or no content
///    type; else 415
///    `unsupported_media_type`. Requiring JSON even for body-less POSTs makes every API mutation a
///    CORS "non-simple" request, which a browser must preflight — and nothing here ever answers a
///    preflight (no CORS headers are ever sent: any `Access-Control-*` header a route sets is
///    dropped), so a web page cannot forge one.
/// 4. The wrapped handler (404, 405 + Allow, the routes).
public final class AccessControl: HTTPHandler {
    /// The realm in `WWW-Authenticate`.
    public static let realm = "mcescan-exporter"
    /// The 403 message for a mutation from a non-loopback peer that did not authenticate.
    public static let forbiddenMessage =
        "mutations are accepted only from loopback or with basic auth; set basic_auth_users in --web.config.file"

    let inner: any HTTPHandler
    /// nil: no `basic_auth_users`, no authentication.
    public let authenticator: BasicAuthenticator?
    let logger: Logger?

    public init(wrapping inner: any HTTPHandler, authenticator: BasicAuthenticator? = nil, logger: Logger? = nil) {
        self.inner = inner
        self.authenticator = authenticator
        self.logger = logger
    }

    /// Wraps `inner` with the users of `config` (no users: no authentication).
    public convenience init(wrapping inner: any HTTPHandler, config: WebConfig, logger: Logger? = nil) {
        self.init(wrapping: inner,
                  authenticator: config.basicAuthUsers.isEmpty ? nil : BasicAuthenticator(users: config.basicAuthUsers),
                  logger: logger)
    }

    public func handle(_ request: HTTPRequest) -> HTTPResponse {
        var authenticated = false
        if let authenticator {
            switch authenticator.authenticate(authorization: request.header("Authorization")) {
            case .authenticated:
                authenticated = true
            case .missing:
                return Self.unauthorized("authentication required (HTTP basic auth)")
            case .malformed:
                return Self.unauthorized("the Authorization header must be: Basic base64(user:password)")
            case .rejected(let user):
                logger?.debug("authentication failed", metadata: [
                    "user": "\(Self.loggable(user))", "peer": "\(request.peer.map { "\($0)" } ?? "unknown")",
                    "path": "\(Self.loggable(request.path))"])
                return Self.unauthorized("wrong user name or password")
            case .busy:
                return HTTPResponse.error(429, code: "too_many_requests",
                                          message: "too many password verifications in progress; retry shortly",
                                          headers: [("Retry-After", "1")])
            }
        }
        if Self.isMutation(request.method) && !authenticated {
            guard request.peer?.isLoopback == true else {
                return HTTPResponse.error(403, code: "forbidden", message: Self.forbiddenMessage)
            }
            if let host = request.header("Host"), !Self.isLoopbackHost(host) {
                return HTTPResponse.error(403, code: "forbidden", message:
                    "mutations from loopback must name a loopback host (localhost, 127.0.0.1 or [::1]) in the Host header, not \"\(host)\"; or set basic_auth_users in --web.config.file and authenticate")
            }
        }
        if let refusal = Self.checkContentType(request) { return refusal }
        var response = inner.handle(request)
        response.headers.removeAll { $0.name.lowercased().hasPrefix("access-control-") }
        return response
    }

    /// GET, HEAD and OPTIONS are reads; every other method (PUT, PATCH, POST, DELETE, anything
    /// unknown) counts as a mutation.
    public static func isMutation(_ method: String) -> Bool {
        !(method == "GET" || method == "HEAD" || method == "OPTIONS")
    }

    /// The content-type rule for a request (see the type's documentation): nil when acceptable,
    /// else the 415 to send. Routes mounted outside `/api/` and `/mcescan/` that take a JSON body
    /// can call `requireJSON` themselves.
    public static func checkContentType(_ request: HTTPRequest) -> HTTPResponse? {
        // Only the methods that carry a body are held to a content type. Any other mutation
        // (DELETE, TRACE, …) has none to check, and a browser always preflights it, so the route
        // answers it (405 where it does not apply).
        guard ["POST", "PUT", "PATCH"].contains(request.method) else { return nil }
        if request.path.hasPrefix("/api/") { return requireJSON(request) }
        if request.path.hasPrefix("/mcescan/") {
            guard let type = request.header("Content-Type") else { return nil }
            let media = mediaType(type)
            // `curl --data` sends application/x-www-form-urlencoded; the view only takes PUT, which a
            // browser always preflights, so accepting it opens nothing to cross-site forms.
            guard media == "text/plain" || media == "application/x-www-form-urlencoded" else {
                return HTTPResponse.error(415, code: "unsupported_media_type",
                                          message: "the /mcescan/ view takes a text/plain body (or no Content-Type), not \(media.isEmpty ? "an empty type" : media)")
            }
        }
        return nil
    }

    /// nil when `Content-Type` is `application/json` (parameters other than `charset=utf-8`
    /// refused), else 415 `unsupported_media_type`.
    public static func requireJSON(_ request: HTTPRequest) -> HTTPResponse? {
        let refusal = HTTPResponse.error(415, code: "unsupported_media_type",
                                         message: "this request needs Content-Type: application/json (e.g. curl -H 'Content-Type: application/json')")
        guard let type = request.header("Content-Type") else { return refusal }
        guard mediaType(type) == "application/json" else { return refusal }
        for parameter in type.split(separator: ";").dropFirst() {
            let p = parameter.trimmingSpaces.lowercased()
            guard p == "charset=utf-8" || p == "charset=\"utf-8\"" else {
                return HTTPResponse.error(415, code: "unsupported_media_type",
                                          message: "Content-Type application/json takes only charset=utf-8, not \(p)")
            }
        }
        return nil
    }

    /// The media type of a Content-Type value, lower-cased, without parameters.
    static func mediaType(_ value: String) -> String {
        String(value.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false).first ?? "").trimmingSpaces.lowercased()
    }

    /// `localhost` (with or without a trailing dot), an IPv4 literal in 127.0.0.0/8 or `[::1]`,
    /// each with an optional port.
    static func isLoopbackHost(_ host: String) -> Bool {
        var name = host.trimmingSpaces.lowercased()
        if name.hasPrefix("[") {
            guard let close = name.firstIndex(of: "]") else { return false }
            let rest = name[name.index(after: close)...]
            guard rest.isEmpty || (rest.first == ":" && isPort(rest.dropFirst())) else { return false }
            return name[name.index(after: name.startIndex)..<close] == "::1"
        }
        if let colon = name.lastIndex(of: ":") {
            guard isPort(name[name.index(after: colon)...]) else { return false }
            name = String(name[..<colon])
        }
        if name == "localhost" || name == "localhost." { return true }
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "127" else { return false }
        return parts.allSatisfy { p in !p.isEmpty && p.count <= 3 && p.allSatisfy(\.isASCIIDigit) && Int(p)! <= 255 }
    }

    private static func isPort(_ s: Substring) -> Bool {
        !s.isEmpty && s.count <= 5 && s.allSatisfy(\.isASCIIDigit)
    }

    /// Client-supplied text made safe for a log line: control characters replaced, at most 128
    /// characters.
    static func loggable(_ text: String) -> String {
        var out = String(text.unicodeScalars.prefix(128).map { $0.value < 0x20 || $0.value == 0x7f ? "?" : Character($0) })
        if text.unicodeScalars.count > 128 { out += "…" }
        return out
    }

    static func unauthorized(_ message: String) -> HTTPResponse {
        HTTPResponse.error(401, code: "unauthorized", message: message,
                           headers: [("WWW-Authenticate", "Basic realm=\"\(realm)\"")])
    }
}

extension StringProtocol {
    fileprivate var trimmingSpaces: String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return String(s)
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
