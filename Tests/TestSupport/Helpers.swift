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
