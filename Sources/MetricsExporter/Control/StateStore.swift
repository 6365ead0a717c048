import HostFS
import ScanWorkers
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The knobs of one node as they are persisted.
public struct PersistedKnobs: Sendable, Equatable {
    public var pagesToScan: Int
    public var sleepMillis: Int
    public var type: Int
    public init(pagesToScan: Int, sleepMillis: Int, type: Int) {
        self.pagesToScan = pagesToScan
        self.sleepMillis = sleepMillis
        self.type = type
    }
}

/// Why the state file cannot be used (read at start-up) or was not written (a knob change).
/// Each message names the file, the problem and the fix for that case.
public struct StateFileError: Error, Sendable, CustomStringConvertible, Equatable {
    public enum Operation: Sendable, Equatable {
        /// Start-up stops; the file is never overwritten.
        case read
        /// The change is refused; the file still holds the previous state.
        case write
    }
    public var path: String
    public var problem: String
    public var operation: Operation = .read

    public init(path: String, problem: String, operation: Operation = .read) {
        self.path = path
        self.problem = problem
        self.operation = operation
    }

    public var description: String {
        switch operation {
        case .read:
            return "state file \(path): \(problem). Fix the file, or move it away to start from the command-line knobs " +
                "(the exporter never overwrites a state file it cannot read)"
        case .write:
            return "state file \(path) was not written: \(problem). It still holds the previous state; " +
                "free space in its directory (or fix its permissions) and retry"
        }
    }
}

/// `state.json` in the state directory: the knobs of every node, written atomically (temp file,
/// fsync, rename, directory fsync) before a change is acknowledged, so an acknowledged change
/// survives `kill -9` and power loss.
///
/// Format (version 1):
/// `{"version":1,"nodes":{"0":{"pages_to_scan":4096,"scan_sleep_millisecs":10000,"type":3}}}`
public final class StateStore: Sendable {
    public let directory: String
    public var path: String { directory + "/state.json" }
    /// Serializes writers: the file always holds the last acknowledged state.
    private let lock = Mutex<Void>(())

    public init(directory: String) {
        self.directory = directory
    }

    /// Reads the state file. nil when there is none yet; throws when it exists but is unreadable
    /// or malformed.
    public func load() throws(StateFileError) -> [Int: PersistedKnobs]? {
        let bytes: [UInt8]
        do {
            bytes = try HostTree(root: directory).readBytes("state.json")
        } catch {
            if error.code == .notFound { return nil }
            throw StateFileError(path: path, problem: error.message)
        }
        return try Self.decode(bytes, path: path)
    }

    static func decode(_ bytes: [UInt8], path: String) throws(StateFileError) -> [Int: PersistedKnobs] {
        let root: JSONValue
        do {
            root = try StrictJSONParser.parse(bytes)
        } catch {
            throw StateFileError(path: path, problem: "not valid JSON (\(error))")
        }
        guard case .object(let top) = root else { throw StateFileError(path: path, problem: "the top level is not an object") }
        var version: Int?
        var nodes: [Int: PersistedKnobs]?
        for (key, value) in top {
            switch key {
            case "version":
                guard case .value(let v)? = value.integer else { throw StateFileError(path: path, problem: "\"version\" is not an integer") }
                version = v
            case "nodes":
                guard case .object(let entries) = value else { throw StateFileError(path: path, problem: "\"nodes\" is not an object") }
                var decoded: [Int: PersistedKnobs] = [:]
                for (nodeKey, nodeValue) in entries {
                    guard let node = Int(nodeKey), node >= 0, String(node) == nodeKey else {
                        throw StateFileError(path: path, problem: "node key \"\(nodeKey)\" is not a node number")
                    }
                    decoded[node] = try decodeKnobs(nodeValue, node: node, path: path)
                }
                nodes = decoded
            default:
                throw StateFileError(path: path, problem: "unknown key \"\(key)\"")
            }
        }
        guard version == 1 else {
            throw StateFileError(path: path, problem: version == nil ? "no \"version\"" : "version \(version!) is not supported (this exporter writes version 1)")
        }
        guard let nodes else { throw StateFileError(path: path, problem: "no \"nodes\"") }
        return nodes
    }

    private static func decodeKnobs(_ value: JSONValue, node: Int, path: String) throws(StateFileError) -> PersistedKnobs {
        guard case .object(let fields) = value else { throw StateFileError(path: path, problem: "node \(node) is not an object") }
        var values: [String: Int] = [:]
        for (k, v) in fields {
            guard ["pages_to_scan", "scan_sleep_millisecs", "type"].contains(k) else {
                throw StateFileError(path: path, problem: "node \(node): unknown key \"\(k)\"")
            }
            guard case .value(let n)? = v.integer else { throw StateFileError(path: path, problem: "node \(node): \"\(k)\" is not an integer") }
            values[k] = n
        }
        guard let p = values["pages_to_scan"], let s = values["scan_sleep_millisecs"], let t = values["type"] else {
            throw StateFileError(path: path, problem: "node \(node): needs pages_to_scan, scan_sleep_millisecs and type")
        }
        return PersistedKnobs(pagesToScan: p, sleepMillis: s, type: t)
    }

    static func encode(_ nodes: [Int: PersistedKnobs]) -> String {
        let entries = nodes.keys.sorted().map { n in
            let k = nodes[n]!
            return "\"\(n)\":{\"pages_to_scan\":\(k.pagesToScan),\"scan_sleep_millisecs\":\(k.sleepMillis),\"type\":\(k.type)}"
        }
        return "{\"version\":1,\"nodes\":{" + entries.joined(separator: ",") + "}}\n"
    }

    /// Writes the whole state durably; returns only once it is on disk.
    public func save(_ nodes: [Int: PersistedKnobs]) throws(StateFileError) {
        let text = Self.encode(nodes)
        let outcome: String? = lock.withLock { _ in
            AtomicFile.write(Array(text.utf8), to: path, mode: 0o600)
        }
        if let outcome { throw StateFileError(path: path, problem: outcome, operation: .write) }
    }

    /// Removes the temporary files a killed writer left behind (`state.json.tmp.PID` whose process
    /// is gone, or is this one: call it before the first save); returns their paths. Another live
    /// process's file is left alone.
    public func removeStaleTemporaries() -> [String] {
        guard let dir = opendir(directory) else { return [] }
        defer { closedir(dir) }
        let prefix = "state.json.tmp."
        var removed: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard name.hasPrefix(prefix), let pid = Int32(name.dropFirst(prefix.count)) else { continue }
            let alive = pid != getpid() && (kill(pid, 0) == 0 || errno == EPERM)
            if !alive && unlink(directory + "/" + name) == 0 { removed.append(directory + "/" + name) }
        }
        return removed.sorted()
    }
}

/// Durable whole-file replacement: write a temp file in the same directory, fsync it, rename it
/// over the target, fsync the directory.
public enum AtomicFile {
    /// Returns nil on success, else what failed.
    public static func write(_ bytes: [UInt8], to path: String, mode: mode_t) -> String? {
        let dir = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        let temp = path + ".tmp.\(getpid())"
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { return "cannot create \(temp): \(String(cString: strerror(errno)))" }
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, bytes.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                let err = String(cString: strerror(errno))
                close(fd); unlink(temp)
                return "cannot write \(temp): \(err)"
            }
            offset += n
        }
        guard fsync(fd) == 0 else {
            let err = String(cString: strerror(errno))
            close(fd); unlink(temp)
            return "fsync \(temp): \(err)"
        }
        close(fd)
        guard rename(temp, path) == 0 else {
            let err = String(cString: strerror(errno))
            unlink(temp)
            return "rename to \(path): \(err)"
        }
        let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dfd >= 0 else { return "open directory \(dir): \(String(cString: strerror(errno)))" }
        defer { close(dfd) }
        guard fsync(dfd) == 0 else { return "fsync directory \(dir): \(String(cString: strerror(errno)))" }
        return nil
    }
}
