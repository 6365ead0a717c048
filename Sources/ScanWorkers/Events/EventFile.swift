#if canImport(Glibc)
import Glibc
#endif

/// `events.jsonl` on disk: appended and fsync'd line by line, rotated by size, repaired at open.
///
/// Bytes that could not be written (full disk, I/O error) stay queued in memory, in order, and
/// are retried before the next append and on every `retry()`, so an event found while the disk
/// is full reaches the file once space returns instead of being lost. A write that stopped in the
/// middle of a line is resumed from where it stopped (the file is opened O_APPEND and only this
/// type writes it, under its owner's lock), so the file never holds half a line followed by
/// another line. Not thread-safe: `EventLog` serializes every call.
struct EventFile {
    let path: String
    /// The size at which the file is rotated to `path.1` (the previous `.1` is replaced).
    let maxBytes: Int
    private var fd: Int32
    private var size: Int
    /// Bytes not yet written; they start at a line boundary unless `resumesLine`.
    private(set) var pending: [UInt8] = []
    private var resumesLine = false
    /// Written but not yet fsync'd (the fsync failed).
    private var unsynced = false
    /// Appends and retries that failed, and the last reason.
    private(set) var writeErrors: UInt64 = 0
    private(set) var lastError: String?

    /// What opening found: the lines of the rotated file and of the current one (tail only), and
    /// the bytes of a torn last line that were cut off.
    struct Opened {
        var rotated: [ArraySlice<UInt8>]
        var current: [ArraySlice<UInt8>]
        /// 1-based number in the current file of `current.first`.
        var firstLineNumber: Int
        var tornBytes: Int
    }

    /// The bytes read back at start: the last 1 MiB holds far more events than the ring keeps.
    static let tailBytes = 1 << 20

    /// Opens (creating 0600) `path`. A last line without its newline is what a crash during an
    /// append leaves; that event was never acknowledged, so the fragment is cut off (and
    /// reported) before anything is appended after it.
    static func open(path: String, maxBytes: Int) throws(EventLogError) -> (EventFile, Opened) {
        let fd = Glibc.open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        if fd < 0 { throw EventLogError(message: "open \(path): \(String(cString: strerror(errno)))") }
        var st = stat()
        var size = fstat(fd, &st) == 0 ? Int(st.st_size) : 0
        var (current, first) = readTail(fd: fd, size: size)
        var torn = 0
        if let last = current.last, size > 0, pread1(fd, at: size - 1) != UInt8(ascii: "\n") {
            torn = last.count
            if ftruncate(fd, off_t(size - torn)) == 0 {
                size -= torn
                current.removeLast()
            } else {
                torn = 0
            }
        }
        var rotated: [ArraySlice<UInt8>] = []
        let old = Glibc.open(path + ".1", O_RDONLY | O_CLOEXEC)
        if old >= 0 {
            var ost = stat()
            if fstat(old, &ost) == 0 { rotated = readTail(fd: old, size: Int(ost.st_size)).lines }
            Glibc.close(old)
        }
        let file = EventFile(path: path, maxBytes: max(4096, maxBytes), fd: fd, size: size)
        return (file, Opened(rotated: rotated, current: current, firstLineNumber: first, tornBytes: torn))
    }

    private init(path: String, maxBytes: Int, fd: Int32, size: Int) {
        self.path = path
        self.maxBytes = maxBytes
        self.fd = fd
        self.size = size
    }

    func close() {
        if fd >= 0 { Glibc.close(fd) }
    }

    /// Queues `bytes` (whole lines) and writes everything queued. Returns whether all of it is on
    /// disk now.
    @discardableResult
    mutating func append(_ bytes: [UInt8]) -> Bool {
        pending += bytes
        return retry()
    }

    /// Writes what is queued (rotating first when it would pass `maxBytes`) and fsyncs. Returns
    /// whether nothing is left queued or unsynced.
    @discardableResult
    mutating func retry() -> Bool {
        guard !pending.isEmpty || unsynced else { return true }
        if !resumesLine && size > 0 && size + pending.count > maxBytes && !rotate() { return false }
        if fd < 0 {
            fd = Glibc.open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
            if fd < 0 { return fail("open \(path): \(String(cString: strerror(errno)))") }
            size = 0
        }
        while !pending.isEmpty {
            let n = pending.withUnsafeBytes { write(fd, $0.baseAddress!, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return fail("write \(path): \(String(cString: strerror(errno)))")
            }
            pending.removeFirst(n)
            size += n
            resumesLine = !pending.isEmpty
            unsynced = true
        }
        guard fsync(fd) == 0 else { return fail("fsync \(path): \(String(cString: strerror(errno)))") }
        unsynced = false
        return true
    }

    /// The current file becomes `path.1` and a new empty one is started.
    private mutating func rotate() -> Bool {
        guard fsync(fd) == 0 else { return fail("fsync \(path): \(String(cString: strerror(errno)))") }
        guard rename(path, path + ".1") == 0 else {
            return fail("rotate \(path) to \(path).1: \(String(cString: strerror(errno)))")
        }
        let fresh = Glibc.open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard fresh >= 0 else {
            Glibc.close(fd)
            fd = -1
            return fail("open \(path) after rotation: \(String(cString: strerror(errno)))")
        }
        Glibc.close(fd)
        fd = fresh
        size = 0
        unsynced = false
        let dir = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        let dfd = Glibc.open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { _ = fsync(dfd); Glibc.close(dfd) }
        return true
    }

    private mutating func fail(_ reason: String) -> Bool {
        writeErrors += 1
        lastError = reason
        return false
    }

    // MARK: reading back

    /// The lines of the last `tailBytes` of a file (a first line cut by the window is dropped)
    /// and the 1-based line number of the first one returned.
    private static func readTail(fd: Int32, size: Int) -> (lines: [ArraySlice<UInt8>], first: Int) {
        guard size > 0 else { return ([], 1) }
        let start = max(0, size - tailBytes)
        let buffer = readAll(fd: fd, from: start, count: size - start)
        var lines = buffer.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        if lines.last?.isEmpty == true { lines.removeLast() }   // the newline that ends the last line
        var first = 1
        if start > 0 {
            first = countNewlines(fd: fd, before: start) + 2
            if !lines.isEmpty { lines.removeFirst() }
        }
        return (lines, first)
    }

    private static func pread1(_ fd: Int32, at offset: Int) -> UInt8? {
        let byte = readAll(fd: fd, from: offset, count: 1)
        return byte.first
    }

    private static func readAll(fd: Int32, from offset: Int, count: Int) -> ArraySlice<UInt8> {
        var buffer = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + got, $0.count - got, off_t(offset + got)) }
            if n <= 0 { if n < 0 && errno == EINTR { continue }; break }
            got += n
        }
        return buffer[0..<got]
    }

    private static func countNewlines(fd: Int32, before end: Int) -> Int {
        var count = 0
        var offset = 0
        while offset < end {
            let chunk = readAll(fd: fd, from: offset, count: min(tailBytes, end - offset))
            if chunk.isEmpty { break }
            count += chunk.reduce(0) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }
            offset += chunk.count
        }
        return count
    }
}
