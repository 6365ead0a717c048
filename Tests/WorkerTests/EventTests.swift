import HostFS
import Testing
import Glibc
@testable import ScanWorkers

@Suite struct EventTests {
    let sample = ScanEvent(id: 7, time: 1_795_000_000.25, node: 1, memoryType: .free, kind: .corruption, offset: 4104,
                           physAddr: 0x1_2345_6008, expected: 0xdead_beef_0000_0001, actual: 0xdead_beef_0000_0003, bits: 1)

    @Test func jsonLineHasAStableKeyOrder() {
        #expect(sample.jsonLine == #"{"id":7,"time":"2026-11-18T11:06:40.250Z","node":1,"memory_type":"free","kind":"corruption","offset":4104,"phys_addr":"0x123456008","expected":"0xdeadbeef00000001","actual":"0xdeadbeef00000003","bits":1}"#)
        let poison = ScanEvent(id: 8, time: 0, node: 0, memoryType: .arena, kind: .lostBacking, offset: 0)
        #expect(poison.jsonLine == #"{"id":8,"time":"1970-01-01T00:00:00.000Z","node":0,"memory_type":"arena","kind":"lost_backing","offset":0,"phys_addr":null,"expected":null,"actual":null,"bits":0}"#)
    }

    @Test func jsonLineRoundTrips() throws {
        let back = try #require(ScanEvent(jsonLine: sample.jsonLine))
        #expect(back == sample)
        #expect(ScanEvent(jsonLine: "{\"id\":1}") == nil)
        #expect(ScanEvent(jsonLine: "not json") == nil)
    }

    @Test func idsContinueAfterARestart() throws {
        let dir = temporaryDirectory()
        do {
            let log = try EventLog(directory: dir)
            let stamped = log.append([sample, sample, sample])
            #expect(stamped.map(\.id) == [1, 2, 3])
        }
        let again = try EventLog(directory: dir)
        #expect(again.nextID == 4)
        #expect(again.events(after: 1).map(\.id) == [2, 3])
        #expect(again.append([sample]).map(\.id) == [4])
        var st = stat()
        #expect(stat(dir + "/events.jsonl", &st) == 0 && st.st_mode & 0o777 == 0o600)
        let lines = try ProcFS(root: dir).readString("events.jsonl").split(separator: "\n")
        #expect(lines.count == 4)
        #expect(lines.compactMap { ScanEvent(jsonLine: $0)?.id } == [1, 2, 3, 4])
    }

    @Test func ringKeepsTheLast1024AndLimitsPages() throws {
        let log = try EventLog(directory: nil)
        log.append([ScanEvent](repeating: sample, count: 1100))
        let all = log.events(after: 0, limit: 5000)
        #expect(all.count == 1000)
        #expect(all.first?.id == 77)   // ids 1-76 left the ring (1100 - 1024)
        #expect(log.events(after: 1095, limit: 10).map(\.id) == [1096, 1097, 1098, 1099, 1100])
        #expect(log.events(after: 0, limit: 0).isEmpty)
    }

    /// Lines a crash, a disk error or a hand edit can leave: each is refused without trapping.
    @Test(arguments: [
        (#"{"id":-1,"time":"1970-01-01T00:00:00.000Z","node":0,"memory_type":"arena","kind":"poison","offset":0,"phys_addr":null,"expected":null,"actual":null,"bits":0}"#, "\"id\""),
        (#"{"id":1e20,"time":"1970-01-01T00:00:00.000Z","node":0,"memory_type":"arena","kind":"poison","offset":0,"phys_addr":null,"expected":null,"actual":null,"bits":0}"#, "\"id\""),
        (#"{"id":18446744073709551615,"time":"1970-01-01T00:00:00.000Z","node":0,"memory_type":"arena","kind":"poison","offset":0,"phys_addr":null,"expected":null,"actual":null,"bits":0}"#, "\"id\""),
        (#"{"id":3,"time":"1970-01-01T00:00:00.000Z","node":99999999999999999999,"memory_type":"arena","kind":"poison","offset":0,"phys_addr":null,"expected":null,"actual":null,"bits":0}"#, "\"node\""),
        (#"{"id":3,"time":"1970-01-01T00:00:00.000Z","node":9223372036854775808,"memory_type":"arena","kind":"poison","offset":0,"phys_addr":null,"expected":null,"actual":null,"bits":0}"#, "\"node\""),
        (#"{"id":3,"time":"1970-01-01T00:00:00.000Z","node":0,"memory_type":"arena","kind":"poison","offset":5.0,"phys_addr":null,"expected":null,"actual":null,"bits":0}"#, "\"offset\""),
        (#"{"id":3,"time":"1970-01-01T00:00:00.000Z","node":0,"memory_type":"arena","kind":"poison","offset":0,"phys_addr":"0xzz","expected":null,"actual":null,"bits":0}"#, "\"phys_addr\""),
        (#"{"id":3,"id":4,"time":"1970-01-01T00:00:00.000Z","node":0,"memory_type":"arena","kind":"poison","offset":0,"phys_addr":null,"expected":null,"actual":null,"bits":0}"#, "not JSON"),
        (#"{"id":3,"time":"1970-01-01T00:00:00.000Z","node":0,"memory_type":"arena","kind":"poi"#, "not JSON"),
        (#"[1,2]"#, "not a JSON object"),
        (#"{"id":3}"#, "\"time\" is missing"),
    ])
    func damagedLinesAreRefused(line: String, reason: String) {
        #expect(ScanEvent(jsonLine: line) == nil)
        #expect { try ScanEvent.decode(jsonLine: line) } throws: { "\($0)".contains(reason) }
    }

    /// A damaged line is skipped and reported with its line number; the lines around it are
    /// restored and ids continue after the highest one read back. A torn last line (no newline:
    /// a crash during an append) is cut off, so the next event starts a line of its own.
    @Test func damagedLinesAreSkippedAtStart() throws {
        let dir = temporaryDirectory()
        let good = { (id: UInt64) in ScanEvent(id: id, time: 0, node: 0, memoryType: .arena, kind: .poison, offset: 0).jsonLine }
        let text = [good(1), #"{"id":-1,"node":0}"#, "", good(5), good(2), String(good(6).prefix(40))].joined(separator: "\n")
        let fd = open(dir + "/events.jsonl", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        #expect(fd >= 0)
        _ = text.withCString { write(fd, $0, strlen($0)) }
        close(fd)
        let log = try EventLog(directory: dir)
        #expect(log.events().map(\.id) == [1, 5, 2])
        #expect(log.nextID == 6)
        #expect(log.skippedLines.map(\.line) == [2, 3])
        #expect(log.skippedLines[0].reason.contains("\"id\""))
        #expect(log.tornTailBytes == 40)
        log.append([sample])
        let lines = try ProcFS(root: dir).readString("events.jsonl").split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 7)   // five lines kept, the new one, the empty string after the last newline
        #expect(ScanEvent(jsonLine: lines[5])?.id == 6)
    }

    /// Past the 1 MiB read back, line numbers still count from the start of the file.
    @Test func lineNumbersCountTheWholeFile() throws {
        let dir = temporaryDirectory()
        let line = ScanEvent(id: 1, time: 0, node: 0, memoryType: .arena, kind: .poison, offset: 0).jsonLine
        let count = EventLog.tailBytes / (line.utf8.count + 1) + 100
        var text = String(repeating: line + "\n", count: count)
        text += "damaged\n"
        let fd = open(dir + "/events.jsonl", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        _ = text.withCString { write(fd, $0, strlen($0)) }
        close(fd)
        let log = try EventLog(directory: dir)
        #expect(log.skippedLines == [EventLog.SkippedLine(line: count + 1, reason: log.skippedLines.first?.reason ?? "")])
        #expect(log.events().count == EventLog.maxLimit)
        #expect(log.nextID == 2)
    }

    @Test func unwritableDirectoryIsAClearError() {
        #expect { try EventLog(directory: "/nonexistent-mcescan/state") } throws: { "\($0)".contains("/nonexistent-mcescan/state/events.jsonl") }
    }

    @Test(arguments: [0.0, 1_795_000_000.25, 1_234_567_890.999])
    func timeRoundTrips(t: Double) throws {
        let back = try #require(parseRFC3339(formatRFC3339(t)))
        #expect(abs(back - t) < 0.001)
    }

    /// A full file system: a tiny tmpfs, filled before the appends.
    @Test func eventsFoundWhileTheDiskIsFullAreQueuedAndWrittenLater() throws {
        let dir = temporaryDirectory()
        defer { _ = system("umount \(dir) 2>/dev/null") }
        try #require(system("mount -t tmpfs -o size=64k tmpfs \(dir)") == 0, "needs root to mount a tmpfs")
        let problems = Locked<[EventLogProblem]>([])
        let log = try EventLog(directory: dir) { p in problems.withLock { $0.append(p) } }
        _ = system("dd if=/dev/zero of=\(dir)/fill bs=4k count=64 2>/dev/null")
        log.append([sample])
        let stamped = log.append([sample, sample])
        #expect(stamped.map(\.id) == [2, 3])
        #expect(log.events().map(\.id) == [1, 2, 3])   // reported, though not yet durable
        #expect(log.writeErrors >= 1)
        #expect(log.pendingBytes > 0)
        log.append([sample])
        #expect(!log.retryPending())
        guard case .writeFailed(let reason, _)? = problems.withLock({ $0.first }) else { Issue.record("no failure reported"); return }
        #expect(reason.contains("No space left on device"))
        #expect(problems.withLock { $0.count } == 1)   // one report per failure streak
        _ = system("rm \(dir)/fill")
        #expect(log.retryPending())
        #expect(log.pendingBytes == 0)
        #expect(problems.withLock { $0.last } == .recovered)
        let ids = try ProcFS(root: dir).readString("events.jsonl").split(separator: "\n").compactMap { ScanEvent(jsonLine: $0)?.id }
        #expect(ids == [1, 2, 3, 4])
    }

    @Test func theFileIsRotatedBySizeAndIdsSurviveTheRotation() throws {
        let dir = temporaryDirectory()
        let lineBytes = sample.jsonLine.utf8.count + 1
        do {
            let log = try EventLog(directory: dir, maxBytes: 4096)
            for _ in 0..<(3 * 4096 / lineBytes) { log.append([sample]) }
        }
        var st = stat()
        #expect(stat(dir + "/events.jsonl", &st) == 0 && st.st_size <= 4096)
        #expect(stat(dir + "/events.jsonl.1", &st) == 0 && st.st_size <= 4096 && st.st_mode & 0o777 == 0o600)
        #expect(access(dir + "/events.jsonl.2", F_OK) != 0)   // one rotated file is kept
        let current = try ProcFS(root: dir).readString("events.jsonl").split(separator: "\n").compactMap { ScanEvent(jsonLine: $0)?.id }
        let rotated = try ProcFS(root: dir).readString("events.jsonl.1").split(separator: "\n").compactMap { ScanEvent(jsonLine: $0)?.id }
        #expect(rotated.last! + 1 == current.first!)   // no event lost at the boundary
        let again = try EventLog(directory: dir, maxBytes: 4096)
        #expect(again.nextID == current.last! + 1)
        #expect(again.events(after: 0).first?.id == rotated.first)
    }
}
