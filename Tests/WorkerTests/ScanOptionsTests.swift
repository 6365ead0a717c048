import Testing
@testable import ScanWorkers

/// The `--scan.*` value parsers: each is the shared format parser plus the flag's own range.
@Suite struct ScanOptionsTests {
    @Test(arguments: [("24h", 86_400.0), ("1h30m", 5_400.0), ("90m", 5_400.0), ("1m", 60.0), ("366d", 366 * 86_400.0), ("7d12h", 648_000.0)])
    func coverageWindowTakesPrometheusDurations(_ text: String, _ seconds: Double) throws {
        #expect(try ScanOptions.parseDuration(text) == seconds)
    }

    @Test(arguments: ["", "24", "1.5h", "1h 30m", "30m1h", "x"])
    func coverageWindowRefusesWhatIsNotADuration(_ text: String) {
        do {
            _ = try ScanOptions.parseDuration(text)
            Issue.record("accepted \"\(text)\"")
        } catch {
            #expect(error.message.contains("is not a duration"))
        }
    }

    @Test(arguments: ["59s", "367d", "2y"])
    func coverageWindowOutOfRange(_ text: String) {
        #expect(throws: OptionError("\(text) is out of range (1m-366d)")) { try ScanOptions.parseDuration(text) }
    }

    @Test func arenaBytesKeepTheirMessages() throws {
        #expect(try ScanOptions.parseBytes("64MiB") == 64 << 20)
        #expect(throws: OptionError("1KiB is out of range (4KiB-1TiB)")) { try ScanOptions.parseBytes("1KiB") }
        #expect(throws: OptionError("99999999999TiB is out of range (4KiB-1TiB)")) { try ScanOptions.parseBytes("99999999999TiB") }
        do { _ = try ScanOptions.parseBytes("64M"); Issue.record("accepted 64M") } catch { #expect(error.message.contains("is not a size")) }
    }

    @Test func nodesUseTheKernelListFormat() throws {
        #expect(try ScanOptions.parseNodes("0,2-3") == [0, 2, 3])
        do { _ = try ScanOptions.parseNodes("3-1"); Issue.record("accepted 3-1") } catch {
            #expect(error.message.contains("N-M") && error.message.hasSuffix("(e.g. 0 or 0,2-3)"))
        }
        #expect(throws: OptionError("the list is empty (e.g. 0 or 0,2-3)")) { try ScanOptions.parseNodes(" ") }
    }
}
