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

    @Test func unwritableDirectoryIsAClearError() {
        #expect { try EventLog(directory: "/nonexistent-mcescan/state") } throws: { "\($0)".contains("/nonexistent-mcescan/state/events.jsonl") }
    }

    @Test(arguments: [0.0, 1_795_000_000.25, 1_234_567_890.999])
    func timeRoundTrips(t: Double) throws {
        let back = try #require(parseRFC3339(formatRFC3339(t)))
        #expect(abs(back - t) < 0.001)
    }
}
