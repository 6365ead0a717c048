#if canImport(Glibc)
import Glibc
#endif

/// A connected socket that sends nothing.
public final class IdleConnection {
    let fd: Int32
    public init(port: UInt16) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = port.bigEndian
        inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr)
        let rc = withUnsafePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0 else { throw RawHTTPError(description: "connect failed") }
    }
    public func close() { Glibc.close(fd) }
}

/// A joinable pthread running a closure (tests only).
public final class TestThread: @unchecked Sendable {
    private var thread = pthread_t()
    private let body: @Sendable () -> Void

    public init(_ body: @escaping @Sendable () -> Void) {
        self.body = body
        let box = Unmanaged.passRetained(self).toOpaque()
        pthread_create(&thread, nil, { raw in
            let me = Unmanaged<TestThread>.fromOpaque(raw!).takeRetainedValue()
            me.body()
            return nil
        }, box)
    }

    public func join() { pthread_join(thread, nil) }
}

/// A temporary directory tree for fixtures.
public struct TempTree {
    public let path: String
    public init() throws {
        var template = Array("/tmp/mcescan-test-XXXXXX".utf8CString)
        guard let p = mkdtemp(&template) else { throw RawHTTPError(description: "mkdtemp failed") }
        path = String(cString: p)
    }
    public func write(_ relative: String, _ content: String) throws {
        let full = path + "/" + relative
        var dir = String(full[..<full.lastIndex(of: "/")!])
        var toCreate: [String] = []
        while access(dir, F_OK) != 0 { toCreate.append(dir); dir = String(dir[..<dir.lastIndex(of: "/")!]) }
        for d in toCreate.reversed() { mkdir(d, 0o755) }
        guard let f = fopen(full, "w") else { throw RawHTTPError(description: "fopen \(full) failed") }
        fputs(content, f)
        fclose(f)
    }
    public func remove() {
        _ = system("rm -rf '\(path)'")
    }
}

/// A slowloris peer: connects from `source` (any 127/8 address works on Linux loopback), sends
/// `prefix`, then one more byte every `interval` seconds, and notes when the server closed the
/// connection (a read gives end-of-stream or an error). Gives up after `maxSeconds`.
public final class TricklingPeer: @unchecked Sendable {
    private let fd: Int32
    private var thread: TestThread?
    private let start: Double
    /// Written by the trickling thread, read after joining it.
    private final class Stamp: @unchecked Sendable { var value = -1.0 }
    private let closedAt = Stamp()

    public init(port: UInt16, source: String = "127.0.0.2", prefix: [UInt8], interval: Double, maxSeconds: Double) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw RawHTTPError(description: "socket failed") }
        var local = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET)
        inet_pton(AF_INET, source, &local.sin_addr)
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = port.bigEndian
        inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr)
        let fd = self.fd
        let bound = withUnsafePointer(to: &local) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        let rc = withUnsafePointer(to: &sin) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0, rc == 0 else { Glibc.close(fd); throw RawHTTPError(description: "connect from \(source) failed: errno \(errno)") }
        _ = prefix.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        start = Self.now()
        let closedAt = self.closedAt, start = self.start
        thread = TestThread {
            var pollfd = Glibc.pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            while Self.now() - start < maxSeconds {
                if poll(&pollfd, 1, Int32(interval * 1000)) > 0 {
                    var byte: UInt8 = 0
                    if recv(fd, &byte, 1, Int32(MSG_DONTWAIT)) <= 0 { closedAt.value = Self.now(); return }
                    continue   // the server answered something (an error page): keep reading until it closes
                }
                var b: UInt8 = UInt8(ascii: "a")
                if send(fd, &b, 1, Int32(MSG_NOSIGNAL)) < 0 { closedAt.value = Self.now(); return }
            }
        }
    }

    /// Waits for the trickling thread; seconds from the end of `prefix` to the server's close, or
    /// nil when the connection was still open after `maxSeconds`.
    public func waitClosed() -> Double? {
        thread?.join()
        thread = nil
        return closedAt.value < 0 ? nil : closedAt.value - start
    }

    deinit {
        thread?.join()
        Glibc.close(fd)
    }

    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}
