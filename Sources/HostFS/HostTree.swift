#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Why a file under a `SysFS` or `ProcFS` root could not be read.
public struct HostFSError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable {
        /// The file does not exist (ENOENT/ENOTDIR): the kernel does not offer it on this host.
        case notFound
        /// It exists but cannot be read: permissions, a directory where a file belongs, an I/O error.
        case unreadable
        /// It was read but its content is not what the kernel ABI documents.
        case malformed
    }
    public var code: Code
    public var path: String
    public var message: String

    public init(_ code: Code, path: String, _ message: String) {
        self.code = code
        self.path = path
        self.message = message
    }

    /// The error of a failed system call on `path`: ENOENT/ENOTDIR mean the source is absent.
    public init(errno err: Int32, path: String, operation: String) {
        let code: Code = (err == ENOENT || err == ENOTDIR) ? .notFound : .unreadable
        self.init(code, path: path, "\(operation): \(String(cString: strerror(err)))")
    }

    public var description: String { "\(path): \(message)" }
}

/// A read-only view of a filesystem tree rooted at `root` (`/sys`, `/proc`, or a test fixture).
/// Every reader of kernel state takes one of these instead of hard-coding a path, so tests run
/// against fixture trees, in parallel.
public struct HostTree: Sendable, Equatable {
    /// The absolute or relative directory that stands for `/` of this tree.
    public let root: String

    public init(root: String) {
        var r = root
        while r.count > 1 && r.hasSuffix("/") { r.removeLast() }
        self.root = r
    }

    /// `root` joined with a path relative to it (leading slashes ignored).
    public func path(_ relative: String) -> String {
        var rel = Substring(relative)
        while rel.hasPrefix("/") { rel = rel.dropFirst() }
        return root == "/" ? "/" + rel : root + "/" + rel
    }

    /// Whether the path exists (file, directory or link target).
    public func exists(_ relative: String) -> Bool {
        access(path(relative), F_OK) == 0
    }

    /// Whether the path is a directory.
    public func isDirectory(_ relative: String) -> Bool {
        var st = stat()
        return stat(path(relative), &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// Reads a whole small file (sysfs attributes, procfs text files), at most `limit` bytes.
    public func readBytes(_ relative: String, limit: Int = 1 << 20) throws(HostFSError) -> [UInt8] {
        let p = path(relative)
        let fd = open(p, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw HostFSError(errno: errno, path: p, operation: "open") }
        defer { close(fd) }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while result.count < limit {
            let want = min(chunk.count, limit - result.count)
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, want) }
            if n < 0 {
                if errno == EINTR { continue }
                throw HostFSError(errno: errno, path: p, operation: "read")
            }
            if n == 0 { break }
            result.append(contentsOf: chunk[0..<n])
        }
        return result
    }

    /// Reads a whole small text file as UTF-8 (invalid bytes replaced).
    public func readString(_ relative: String, limit: Int = 1 << 20) throws(HostFSError) -> String {
        String(decoding: try readBytes(relative, limit: limit), as: UTF8.self)
    }

    /// Reads a file holding one decimal integer (sysfs counters), ignoring surrounding white space.
    public func readUInt64(_ relative: String) throws(HostFSError) -> UInt64 {
        let text = try readString(relative, limit: 64)
        guard let value = UInt64(text.trimmingCharacters(in: " \t\n")) else {
            throw HostFSError(.malformed, path: path(relative), "expected an unsigned integer, read \"\(text.prefix(32))\"")
        }
        return value
    }

    /// Names in a directory, sorted, without `.` and `..`.
    public func list(_ relative: String) throws(HostFSError) -> [String] {
        let p = path(relative)
        guard let dir = opendir(p) else { throw HostFSError(errno: errno, path: p, operation: "opendir") }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.baseAddress!.assumingMemoryBound(to: CChar.self))
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// The target of a symbolic link, or nil when the path is not a link.
    public func readLink(_ relative: String) -> String? {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink(path(relative), &buf, buf.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// The sysfs tree (`--path.sysfs`, default `/sys`).
public typealias SysFS = HostTree
/// The procfs tree (`--path.procfs`, default `/proc`).
public typealias ProcFS = HostTree

extension HostTree {
    /// `list`, or nil when the directory does not exist (ENOENT/ENOTDIR): an absent source.
    public func listIfPresent(_ relative: String) throws(HostFSError) -> [String]? {
        do {
            return try list(relative)
        } catch {
            if error.code == .notFound { return nil }
            throw error
        }
    }
}

extension StringProtocol {
    /// The text without the given leading and trailing Unicode scalars. Scalars, not Characters:
    /// "\r\n" is one Character, so a Character test would not trim the "\n" of `echo 8192`
    /// from a set written as " \t\r\n", nor a lone "\r".
    public func trimmingCharacters(in set: String) -> String {
        let scalars = unicodeScalars
        let drop = Set(set.unicodeScalars)
        guard let first = scalars.firstIndex(where: { !drop.contains($0) }) else { return "" }
        let last = scalars.lastIndex(where: { !drop.contains($0) })!
        var kept = String.UnicodeScalarView()
        kept.append(contentsOf: scalars[first...last])
        return String(kept)
    }

    /// The text without leading and trailing spaces and tabs (HTTP optional whitespace).
    public func trimmingWhitespace() -> String { trimmingCharacters(in: " \t") }
}
