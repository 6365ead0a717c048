#if canImport(Glibc)
import Glibc
#endif

/// A `--web.listen-address` value: `:10120`, `0.0.0.0:10120`, `127.0.0.1:0`, `[::1]:10120`,
/// `localhost:10120`. An empty host means every address (IPv6 and IPv4 where the host has both).
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: UInt16

    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port`; the error names what is wrong.
    public init(parsing text: String) throws(HTTPServerError) {
        let hostPart: Substring
        let portPart: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else {
                throw HTTPServerError("listen address \"\(text)\": missing ']' after an IPv6 address")
            }
            hostPart = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { throw HTTPServerError("listen address \"\(text)\": expected :PORT after ']'") }
            portPart = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else {
                throw HTTPServerError("listen address \"\(text)\": expected HOST:PORT or :PORT")
            }
            hostPart = text[..<colon]
            portPart = text[text.index(after: colon)...]
            if hostPart.contains(":") {
                throw HTTPServerError("listen address \"\(text)\": put an IPv6 address in brackets, e.g. [::1]:10120")
            }
        }
        guard let port = UInt16(portPart) else {
            throw HTTPServerError("listen address \"\(text)\": port \"\(portPart)\" is not a number from 0 to 65535")
        }
        self.host = String(hostPart)
        self.port = port
    }

    public var description: String {
        if host.contains(":") { return "[\(host)]:\(port)" }
        return "\(host):\(port)"
    }
}

/// A listening socket and the address it is bound to (with the real port when 0 was asked for).
struct BoundSocket {
    var fd: Int32
    var address: ListenAddress
}

enum SocketBinder {
    /// Creates, binds and listens on a TCP socket for `address`.
    static func bind(_ address: ListenAddress, backlog: Int32 = 128) throws(HTTPServerError) -> BoundSocket {
        if address.host.isEmpty {
            // Every address: a dual-stack IPv6 socket, or IPv4 where the host has no IPv6.
            if let s = try? bindOne(family: AF_INET6, host: "::", port: address.port, v6only: false, backlog: backlog) {
                return BoundSocket(fd: s.fd, address: ListenAddress(host: "", port: s.port))
            }
            let s = try bindOne(family: AF_INET, host: "0.0.0.0", port: address.port, v6only: false, backlog: backlog)
            return BoundSocket(fd: s.fd, address: ListenAddress(host: "", port: s.port))
        }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICSERV
        var result: UnsafeMutablePointer<addrinfo>? = nil
        let rc = getaddrinfo(address.host, String(address.port), &hints, &result)
        guard rc == 0, let first = result else {
            throw HTTPServerError("listen address \(address): cannot resolve host: \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(result) }
        var lastError = HTTPServerError("listen address \(address): no usable address")
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let ai = entry {
            let family = ai.pointee.ai_family
            if family == AF_INET || family == AF_INET6 {
                do throws(HTTPServerError) {
                    let host = numericHost(ai.pointee.ai_addr, ai.pointee.ai_addrlen)
                    let s = try bindOne(family: family, host: host, port: address.port, v6only: true, backlog: backlog)
                    return BoundSocket(fd: s.fd, address: ListenAddress(host: host, port: s.port))
                } catch {
                    lastError = error
                }
            }
            entry = ai.pointee.ai_next
        }
        throw lastError
    }

    private static func bindOne(family: Int32, host: String, port: UInt16, v6only: Bool, backlog: Int32) throws(HTTPServerError) -> (fd: Int32, port: UInt16) {
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw HTTPServerError("socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var storage = sockaddr_storage()
        var length: socklen_t
        if family == AF_INET6 {
            var v6 = v6only ? Int32(1) : Int32(0)
            setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &v6, socklen_t(MemoryLayout<Int32>.size))
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = port.bigEndian
            guard inet_pton(AF_INET6, host, &sin6.sin6_addr) == 1 else {
                close(fd)
                throw HTTPServerError("listen address [\(host)]:\(port): not an IPv6 address")
            }
            withUnsafeMutableBytes(of: &storage) { dst in withUnsafeBytes(of: sin6) { dst.copyMemory(from: $0) } }
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        } else {
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = port.bigEndian
            guard inet_pton(AF_INET, host, &sin.sin_addr) == 1 else {
                close(fd)
                throw HTTPServerError("listen address \(host):\(port): not an IPv4 address")
            }
            withUnsafeMutableBytes(of: &storage) { dst in withUnsafeBytes(of: sin) { dst.copyMemory(from: $0) } }
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
        }
        let bound = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, length) }
        }
        guard bound == 0 else {
            let err = errno
            close(fd)
            let shown = family == AF_INET6 ? "[\(host)]:\(port)" : "\(host):\(port)"
            throw HTTPServerError("cannot listen on \(shown): \(String(cString: strerror(err)))")
        }
        guard listen(fd, backlog) == 0 else {
            let err = errno
            close(fd)
            throw HTTPServerError("listen: \(String(cString: strerror(err)))")
        }
        var actual = sockaddr_storage()
        var actualLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &actualLength) }
        }
        let boundPort: UInt16 = withUnsafeBytes(of: actual) { raw in
            // sin_port and sin6_port sit at the same offset (2) in both structures.
            UInt16(raw[2]) << 8 | UInt16(raw[3])
        }
        return (fd, boundPort)
    }

    private static func numericHost(_ addr: UnsafeMutablePointer<sockaddr>?, _ len: socklen_t) -> String {
        var buf = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        guard let addr, getnameinfo(addr, len, &buf, socklen_t(buf.count), nil, 0, NI_NUMERICHOST) == 0 else { return "" }
        let bytes = buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self)
    }
}
