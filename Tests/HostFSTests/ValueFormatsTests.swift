import HostFS
import Testing

@Suite struct NodeListTests {
    @Test(arguments: [
        ("0", [0]), ("0-3", [0, 1, 2, 3]), ("0,2-3", [0, 2, 3]), ("8-11,1\n", [1, 8, 9, 10, 11]),
        ("", []), ("\n", []), ("3,3,1-2", [1, 2, 3]),
    ])
    func parsesLists(text: String, ids: [Int]) throws {
        #expect(try parseList(text) == ids)
    }

    @Test(arguments: ["a", "1-", "-1", "3-1", "1,,2", "1-2-3", "0x1", " 1 - 2"])
    func rejectsMalformedLists(text: String) {
        #expect(throws: ValueFormatError.self) { try parseList(text) }
        do { _ = try parseList(text) } catch { #expect(error.message.contains("N-M")) }
    }

    @Test(arguments: [("0-3,8,10-11", [0, 1, 2, 3, 8, 10, 11]), ("", []), ("\n", []), ("5", [5]), ("0-1\n", [0, 1])])
    func kernelLists(_ text: String, _ expected: [Int]) throws {
        #expect(try parseList(text) == expected)
        #expect(try parseList(formatKernelList(expected)) == expected)
    }

    @Test(arguments: ["a", "1-", "-1", "3-1", "1,,2", "0-99999999"])
    func badKernelLists(_ text: String) {
        #expect(throws: ValueFormatError.self) { try parseList(text) }
    }
}

@Suite struct SizeTests {
    @Test(arguments: [("64MiB", 64 << 20), ("4096", 4096), ("1GiB", 1 << 30), ("8KiB", 8192), ("512B", 512), (" 2TiB ", 2 << 40)])
    func accepted(_ text: String, _ bytes: Int) throws {
        #expect(try parseSize(text) == bytes)
    }

    @Test(arguments: ["", "MiB", "64M", "-1KiB", "1.5GiB", "64 MiB", "x"])
    func notASize(_ text: String) {
        do {
            _ = try parseSize(text)
            Issue.record("accepted \"\(text)\"")
        } catch {
            #expect(error.message.contains("is not a size") && !error.tooLarge)
        }
    }

    @Test func tooLargeIsTold() {
        do {
            _ = try parseSize("99999999999TiB")
            Issue.record("accepted")
        } catch {
            #expect(error.tooLarge)
        }
    }
}

@Suite struct DurationTests {
    @Test(arguments: [("90s", 90.0), ("5m", 300.0), ("1h30m", 5400.0), ("24h", 86400.0), ("1500ms", 1.5), ("2w", 1_209_600.0), ("1y", 31_536_000.0)])
    func accepted(_ text: String, _ seconds: Double) throws {
        #expect(try parseDuration(text) == seconds)
    }

    @Test(arguments: ["", "60", "s", "5x", "1.5s", "-5s", "5s1m", "1m1m", "5 s", "60S"])
    func notADuration(_ text: String) {
        #expect(throws: ValueFormatError.self) { try parseDuration(text) }
    }

    @Test(arguments: [(86400.0, "24h"), (300, "5m"), (1, "1s"), (1.5, "1500ms")])
    func formats(_ seconds: Double, _ text: String) {
        #expect(formatDuration(seconds) == text)
    }
}

@Suite struct TrimmingTests {
    /// "\r\n" is one Character; trimming works on scalars so each of "\r" and "\n" goes alone too.
    @Test(arguments: [("8192\n", "8192"), ("8192\r\n", "8192"), ("\r8192\r", "8192"), (" \t8192 \n\n", "8192"),
                      ("\n\r\n", ""), ("", ""), ("a b", "a b")])
    func scalars(_ text: String, _ trimmed: String) {
        #expect(text.trimmingCharacters(in: " \t\r\n") == trimmed)
    }

    @Test func whitespaceIsSpacesAndTabs() {
        #expect(" \tgzip;q=1\t ".trimmingWhitespace() == "gzip;q=1")
        #expect("x\n".trimmingWhitespace() == "x\n")
    }
}
