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
///
/// When the disk refuses a write the events still enter the ring and are counted; their lines
/// stay queued (`pendingBytes`) and are retried before every later append and on `retryPending()`,
/// each failure is counted (`writeErrors`) and reported through `problem`, so nothing found is
/// lost silently. The file is rotated to `events.jsonl.1` when it would pass `maxBytes`.
public final class EventLog: Sendable {
    /// Events kept in memory (`GET /api/v1/events` serves these).
    public static let capacity = 1024
    /// The most events `events(after:limit:)` returns at once.
    public static let maxLimit = 1000
    /// Default size at which `events.jsonl` is rotated.
    public static let defaultMaxBytes = 64 << 20

    private struct State {
        var ring: [ScanEvent] = []
        var nextID: UInt64 = 1
        var file: EventFile?
        /// The failure streak is reported once, at its start and at its end.
        var failing = false
    }
    private let state: Locked<State>
    private let problem: @Sendable (EventLogProblem) -> Void
    /// The file, or nil for a memory-only log.
    public let path: String?

    /// A log appended to `directory/events.jsonl` (created 0600 if missing), or memory-only when
    /// `directory` is nil. Reads back the tail of the file (and of the rotated one) to restore the
    /// ring and the next id, and cuts off a torn last line. `problem` hears of write failures and
    /// recoveries (from the thread that appends).
    public init(directory: String?, maxBytes: Int = defaultMaxBytes,
                problem: @escaping @Sendable (EventLogProblem) -> Void = { _ in }) throws(EventLogError) {
        var s = State()
        self.problem = problem
        if let directory {
            let path = directory + "/events.jsonl"
            self.path = path
            let (file, opened) = try EventFile.open(path: path, maxBytes: maxBytes)
            s.file = file
            let older = opened.rotated.compactMap { try? ScanEvent.decode(jsonLine: String(decoding: $0, as: UTF8.self)) }
            let (current, skipped) = Self.decode(opened.current, firstLine: opened.firstLineNumber)
            let restored = older + current
            s.ring = Array(restored.suffix(Self.capacity))
            if let last = restored.map(\.id).max() { s.nextID = last + 1 }
            skippedLines = skipped
            tornTailBytes = opened.tornBytes
        } else {
            self.path = nil
            skippedLines = []
            tornTailBytes = 0
        }
        state = Locked(s)
    }

    deinit {
        state.withLock { $0.file?.close() }
    }

    /// Assigns ids to `events`, queues their lines for the file and writes (and fsyncs) every
    /// queued line, then adds them to the ring. Returns the events with their ids.
    @discardableResult
    public func append(_ events: [ScanEvent]) -> [ScanEvent] {
        guard !events.isEmpty else { return [] }
        let (stamped, report) = state.withLock { s -> ([ScanEvent], EventLogProblem?) in
            var stamped = events
            var text = ""
            for i in stamped.indices {
                stamped[i].id = s.nextID
                s.nextID += 1
                text += stamped[i].jsonLine + "\n"
            }
            var report: EventLogProblem?
            if s.file != nil {
                let ok = s.file!.append(Array(text.utf8))
                report = Self.transition(&s, ok: ok)
            }
            s.ring.append(contentsOf: stamped)
            if s.ring.count > Self.capacity { s.ring.removeFirst(s.ring.count - Self.capacity) }
            return (stamped, report)
        }
        if let report { problem(report) }
        return stamped
    }

    /// Writes lines still queued after a failure; cheap when nothing is queued. Returns whether
    /// the file is now complete.
    @discardableResult
    public func retryPending() -> Bool {
        let (ok, report) = state.withLock { s -> (Bool, EventLogProblem?) in
            guard s.file != nil, !s.file!.pending.isEmpty || s.failing else { return (true, nil) }
            let ok = s.file!.retry()
            return (ok, Self.transition(&s, ok: ok))
        }
        if let report { problem(report) }
        return ok
    }

    private static func transition(_ s: inout State, ok: Bool) -> EventLogProblem? {
        defer { s.failing = !ok }
        if !ok && !s.failing {
            return .writeFailed(reason: s.file?.lastError ?? "unknown", pendingBytes: s.file?.pending.count ?? 0)
        }
        if ok && s.failing { return .recovered }
        return nil
    }

    /// Events with id > `after`, oldest first, at most `limit` (capped at `maxLimit`).
    public func events(after: UInt64 = 0, limit: Int = maxLimit) -> [ScanEvent] {
        let n = max(0, min(limit, Self.maxLimit))
        return state.withLock { s in Array(s.ring.lazy.filter { $0.id > after }.prefix(n)) }
    }

    /// The id of the oldest event still in memory (nil when there is none).
    public var oldestID: UInt64? { state.withLock { $0.ring.first?.id } }

    /// The id the next event gets.
    public var nextID: UInt64 { state.withLock { $0.nextID } }

    /// Appends and retries that failed to reach the disk.
    public var writeErrors: UInt64 { state.withLock { $0.file?.writeErrors ?? 0 } }

    /// Why the last write failed (nil before any failure).
    public var lastWriteError: String? { state.withLock { $0.file?.lastError } }

    /// Bytes of event lines waiting to be written (non-zero only while the disk refuses them).
    public var pendingBytes: Int { state.withLock { $0.file?.pending.count ?? 0 } }

    /// Lines of the file that could not be read back at start (damaged by a disk error or a hand
    /// edit); they were skipped. The caller logs them.
    public let skippedLines: [SkippedLine]

    /// Bytes of a torn last line (a crash during an append) cut off at start; the caller logs it.
    public let tornTailBytes: Int

    /// A line of `events.jsonl` skipped at start: its 1-based number in the file and why.
    public struct SkippedLine: Sendable, Equatable {
        public var line: Int
        public var reason: String
    }

    /// The bytes read back at start.
    static var tailBytes: Int { EventFile.tailBytes }

    /// Parses read-back lines; a line that does not parse is skipped and reported with its line
    /// number (never fatal: the log must not keep the daemon from starting, and a later append
    /// must not be lost behind it).
    private static func decode(_ lines: [ArraySlice<UInt8>], firstLine: Int) -> ([ScanEvent], [SkippedLine]) {
        var events: [ScanEvent] = []
        var skipped: [SkippedLine] = []
        for (i, line) in lines.enumerated() {
            do {
                events.append(try ScanEvent.decode(jsonLine: String(decoding: line, as: UTF8.self)))
            } catch {
                skipped.append(SkippedLine(line: firstLine + i, reason: error.message))
            }
        }
        return (events, skipped)
    }
}

/// What the event log tells its owner about the file.
public enum EventLogProblem: Sendable, Equatable {
    /// Writing started failing; found events are kept queued in memory and retried.
    case writeFailed(reason: String, pendingBytes: Int)
    /// Every queued line has been written since.
    case recovered
}
