import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Why the event log could not be opened or written.
public struct EventLogError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// Every error found: the last `capacity` events in memory, and all of them appended to
/// `<state.dir>/events.jsonl` with `fsync` before the append returns (so an event counted as
/// reported survives a crash). Ids continue from the highest id read back after a restart.
public final class EventLog: Sendable {
    /// Events kept in memory (`GET /api/v1/events` serves these).
    public static let capacity = 1024
    /// The most events `events(after:limit:)` returns at once.
    public static let maxLimit = 1000

    private struct State {
        var ring: [ScanEvent] = []
        var nextID: UInt64 = 1
        var fd: Int32 = -1
        var writeFailures: UInt64 = 0
    }
    private let state: Locked<State>
    /// The file, or nil for a memory-only log.
    public let path: String?

    /// A log appended to `directory/events.jsonl` (created 0600 if missing), or memory-only when
    /// `directory` is nil. Reads the tail of an existing file to restore the ring and the next id.
    public init(directory: String?) throws(EventLogError) {
        var s = State()
        if let directory {
            let path = directory + "/events.jsonl"
            self.path = path
            let fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
            if fd < 0 { throw EventLogError(message: "open \(path): \(String(cString: strerror(errno)))") }
            s.fd = fd
            let restored = Self.readTail(fd: fd)
            s.ring = Array(restored.events.suffix(Self.capacity))
            if let last = restored.events.map(\.id).max() { s.nextID = last + 1 }
            skippedLines = restored.skipped
        } else {
            self.path = nil
            skippedLines = []
        }
        state = Locked(s)
    }

    deinit {
        state.withLock { if $0.fd >= 0 { close($0.fd) } }
    }

    /// Assigns ids to `events`, appends them to the file and fsyncs, then adds them to the ring.
    /// Returns the events with their ids. A write error is counted (`writeFailures`) and the
    /// events still enter the ring: they are then reported, but not durable.
    @discardableResult
    public func append(_ events: [ScanEvent]) -> [ScanEvent] {
        guard !events.isEmpty else { return [] }
        return state.withLock { s in
            var stamped = events
            var text = ""
            for i in stamped.indices {
                stamped[i].id = s.nextID
                s.nextID += 1
                text += stamped[i].jsonLine + "\n"
            }
            if s.fd >= 0 {
                var ok = true
                var bytes = Array(text.utf8)
                var done = 0
                while done < bytes.count {
                    let n = bytes.withUnsafeMutableBytes { write(s.fd, $0.baseAddress! + done, $0.count - done) }
                    if n < 0 { if errno == EINTR { continue }; ok = false; break }
                    done += n
                }
                bytes.removeAll()
                if !ok || fsync(s.fd) != 0 { s.writeFailures += 1 }
            }
            s.ring.append(contentsOf: stamped)
            if s.ring.count > Self.capacity { s.ring.removeFirst(s.ring.count - Self.capacity) }
            return stamped
        }
    }

    /// Events with id > `after`, oldest first, at most `limit` (capped at `maxLimit`).
    public func events(after: UInt64 = 0, limit: Int = maxLimit) -> [ScanEvent] {
        let n = max(0, min(limit, Self.maxLimit))
        return state.withLock { s in Array(s.ring.lazy.filter { $0.id > after }.prefix(n)) }
    }

    /// The id the next event gets.
    public var nextID: UInt64 { state.withLock { $0.nextID } }

    /// Appends that failed to reach the disk.
    public var writeFailures: UInt64 { state.withLock { $0.writeFailures } }

    /// Lines of the file that could not be read back at start (damaged or cut by a crash); they
    /// were skipped. The caller logs them.
    public let skippedLines: [SkippedLine]

    /// A line of `events.jsonl` skipped at start: its 1-based number in the file and why.
    public struct SkippedLine: Sendable, Equatable {
        public var line: Int
        public var reason: String
    }

    /// The bytes read back at start: the last 1 MiB holds far more than `capacity` events.
    static let tailBytes = 1 << 20

    /// Reads up to the last `tailBytes` of the file and parses its lines; a line that does not
    /// parse is skipped and reported with its line number (never fatal: the log must not keep the
    /// daemon from starting, and a later append must not be lost behind it).
    private static func readTail(fd: Int32) -> (events: [ScanEvent], skipped: [SkippedLine]) {
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_size > 0 else { return ([], []) }
        let size = Int(st.st_size)
        let start = max(0, size - tailBytes)
        let buffer = readAll(fd: fd, from: start, count: size - start)
        var lines = buffer.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        if lines.last?.isEmpty == true { lines.removeLast() }   // the newline that ends the last line
        var lineNumber = 1
        if start > 0 {
            // The first line read is probably cut in the middle: it is not an event, and the
            // numbers of the others count the newlines before it.
            lineNumber = countNewlines(fd: fd, before: start) + 2
            if !lines.isEmpty { lines.removeFirst() }
        }
        var events: [ScanEvent] = []
        var skipped: [SkippedLine] = []
        for line in lines {
            do {
                events.append(try ScanEvent.decode(jsonLine: String(decoding: line, as: UTF8.self)))
            } catch {
                skipped.append(SkippedLine(line: lineNumber, reason: error.message))
            }
            lineNumber += 1
        }
        return (events, skipped)
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
