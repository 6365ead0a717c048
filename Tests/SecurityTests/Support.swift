import Testing

#if canImport(Glibc)
import Glibc
#endif

struct ToolError: Error, CustomStringConvertible {
    var description: String
}

/// Runs a command line through /bin/sh, returns its exit status and combined output. Used to have
/// real tools (openssl, htpasswd, curl) make fixtures and judge results.
@discardableResult
func shell(_ command: String) throws -> (status: Int32, output: String) {
    let dir = try TempDir.shared.path
    let outFile = "\(dir)/shell-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).out"
    defer { unlink(outFile) }
    var pid = pid_t()
    let argv = ["/bin/sh", "-c", "(\(command)) >'\(outFile)' 2>&1"]
    var cArgs = argv.map { strdup($0) } + [nil]
    defer { for p in cArgs { free(p) } }
    let rc = posix_spawn(&pid, "/bin/sh", nil, nil, &cArgs, environ)
    guard rc == 0 else { throw ToolError(description: "posix_spawn /bin/sh failed: \(rc)") }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    let output = (try? readText(outFile)) ?? ""
    let exited = status & 0x7f == 0
    return (exited ? (status >> 8) & 0xff : 128 + (status & 0x7f), output)
}

/// Like `shell`, but a non-zero exit is an error carrying the output.
@discardableResult
func mustRun(_ command: String) throws -> String {
    let r = try shell(command)
    guard r.status == 0 else { throw ToolError(description: "`\(command)` exited \(r.status): \(r.output)") }
    return r.output
}

func readText(_ path: String) throws -> String {
    guard let f = fopen(path, "r") else { throw ToolError(description: "cannot open \(path)") }
    defer { fclose(f) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 8192)
    while true {
        let n = fread(&buffer, 1, buffer.count, f)
        if n == 0 { break }
        bytes.append(contentsOf: buffer[0..<n])
    }
    return String(decoding: bytes, as: UTF8.self)
}

func writeText(_ path: String, _ text: String) throws {
    guard let f = fopen(path, "w") else { throw ToolError(description: "cannot write \(path)") }
    defer { fclose(f) }
    _ = text.withCString { fputs($0, f) }
}

/// One temporary directory per test process (removed at exit).
final class TempDir: Sendable {
    static let shared = TempDir()
    let made: String?

    private init() {
        var template = Array("/tmp/mcescan-security-XXXXXX".utf8CString)
        made = template.withUnsafeMutableBufferPointer { p in mkdtemp(p.baseAddress!).map { String(cString: $0) } }
        if let made {
            // atexit cannot capture; the directory name is deterministic from the pointer we keep.
            TempDir.cleanupPath = made
            atexit { if let p = TempDir.cleanupPath { _ = system("rm -rf '\(p)'") } }
        }
    }

    nonisolated(unsafe) static var cleanupPath: String?

    var path: String {
        get throws {
            guard let made else { throw ToolError(description: "mkdtemp failed") }
            return made
        }
    }
}

/// Self-signed certificates, keys and bcrypt hashes made once per test process with the real tools.
struct Fixtures: Sendable {
    let dir: String
    let certFile: String
    let keyFile: String
    /// A second key that does not belong to `certFile`.
    let otherKeyFile: String
    /// A key encrypted with a passphrase.
    let encryptedKeyFile: String
    /// `alice` / `wonderland`, bcrypt cost 10 by htpasswd ($2y$).
    let aliceHash: String
    /// `bob` / `builder`, bcrypt cost 5 by htpasswd.
    let bobHash: String

    static let shared: Result<Fixtures, ToolError> = Result { () throws(ToolError) -> Fixtures in
        do { return try Fixtures() } catch let e as ToolError { throw e } catch { throw ToolError(description: "\(error)") }
    }

    static func get() throws -> Fixtures { try shared.get() }

    private init() throws {
        dir = try TempDir.shared.path + "/fixtures"
        try mustRun("mkdir -p '\(dir)/tls'")
        certFile = "\(dir)/tls/cert.pem"
        keyFile = "\(dir)/tls/key.pem"
        otherKeyFile = "\(dir)/tls/other-key.pem"
        encryptedKeyFile = "\(dir)/tls/encrypted-key.pem"
        try mustRun("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout '\(keyFile)' -out '\(certFile)'")
        try mustRun("chmod 600 '\(keyFile)'")
        try mustRun("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out '\(otherKeyFile)'")
        try mustRun("openssl pkey -in '\(keyFile)' -aes256 -passout pass:secret -out '\(encryptedKeyFile)'")
        aliceHash = try Self.htpasswd(user: "alice", password: "wonderland", cost: 10)
        bobHash = try Self.htpasswd(user: "bob", password: "builder", cost: 5)
    }

    /// `htpasswd -nbBC cost user password` (apache2-utils' own bcrypt, independent of libcrypt).
    static func htpasswd(user: String, password: String, cost: Int) throws -> String {
        let line = try mustRun("htpasswd -nbBC \(cost) '\(user)' '\(password)'")
        guard let first = line.split(separator: "\n").first, first.hasPrefix("\(user):") else {
            throw ToolError(description: "unexpected htpasswd output: \(line)")
        }
        return String(first.dropFirst(user.count + 1))
    }
}

/// `Basic base64(user:password)`.
func basicHeader(_ user: String, _ password: String) -> String {
    "Basic " + base64(Array("\(user):\(password)".utf8))
}

func base64(_ bytes: [UInt8]) -> String {
    let table = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    var out: [UInt8] = []
    var i = 0
    while i < bytes.count {
        let n = min(3, bytes.count - i)
        var v = UInt32(bytes[i]) << 16
        if n > 1 { v |= UInt32(bytes[i + 1]) << 8 }
        if n > 2 { v |= UInt32(bytes[i + 2]) }
        for j in 0..<4 {
            out.append(j <= n ? table[Int((v >> UInt32(18 - 6 * j)) & 63)] : UInt8(ascii: "="))
        }
        i += 3
    }
    return String(decoding: out, as: UTF8.self)
}
