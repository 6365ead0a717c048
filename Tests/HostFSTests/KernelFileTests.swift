import HostFS
import Testing

@Suite struct MemoryFailureFileTests {
    @Test(arguments: [("0", UInt64(0)), ("0\n", 0), ("17\n", 17), ("18446744073709551615\n", UInt64.max)])
    func parseCount(_ text: String, _ expected: UInt64) throws {
        #expect(try MemoryFailureStats.parseCount(Array(text.utf8)) == expected)
    }

    @Test(arguments: ["", "\n", "-1\n", "1 \n", " 1", "0x10\n", "1\n\n", "abc\n", "18446744073709551616\n", "1.0\n"])
    func malformedCount(_ text: String) {
        do {
            _ = try MemoryFailureStats.parseCount(Array(text.utf8), path: "node0/memory_failure/failed")
            Issue.record("accepted \"\(text)\"")
        } catch {
            #expect(error.code == .malformed)
            #expect(error.path == "node0/memory_failure/failed")
        }
    }

    @Test func totalIsCheckedAgainstTheSum() {
        #expect(MemoryFailureStats(counts: [1, 2, 3, 4], total: 10).isConsistent)
        #expect(!MemoryFailureStats(counts: [1, 2, 3, 4], total: 11).isConsistent)
        #expect(MemoryFailureStats(counts: [1, 2, 3, 4], total: nil).isConsistent)
    }
}

@Suite struct EdacScrubFileTests {
    @Test(arguments: [("0\n", UInt64(0)), ("1\n", 1), ("1", 1)])
    func enabled(_ text: String, _ expected: UInt64) throws {
        #expect(try EdacScrub.parseEnabled(Array(text.utf8)) == expected)
    }

    @Test(arguments: ["2\n", "", "yes\n", "-1\n", "1 1\n"])
    func badEnabled(_ text: String) {
        #expect(throws: HostFSError.self) { try EdacScrub.parseEnabled(Array(text.utf8)) }
    }

    @Test(arguments: ["", "3600s\n", "-5\n", "1e3\n", "\n"])
    func badSeconds(_ text: String) {
        #expect(throws: HostFSError.self) { try EdacScrub.parseSeconds(Array(text.utf8)) }
    }

    @Test(arguments: [("scrub0", true), ("scrub12", true), ("scrub", false), ("ecs_fru0", false), ("scrubx", false)])
    func instanceNames(_ name: String, _ isScrub: Bool) {
        #expect(EdacScrub.isScrubInstance(name) == isScrub)
    }
}

@Suite struct NodeFileTests {
    @Test func nodeMeminfoTakesTheNumberAfterTheKey() throws {
        let info = try parseNodeMeminfo("Node 3 MemTotal:        5728032 kB\nNode 3 MemFree:    100 kB\nNode 3 HugePages_Total:     2\n")
        #expect(info["MemTotal"] == 5_728_032 * 1024)
        #expect(info["MemFree"] == 100 * 1024)
        #expect(info["HugePages_Total"] == 2)
        #expect(throws: HostFSError.self) { try parseNodeMeminfo("Node 0 MemTotal: lots kB\n") }
    }

    @Test(arguments: [
        ("some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n", 0.0),
        ("full avg10=9.00 avg60=0.00 avg300=0.00 total=0\nsome avg10=12.34 avg60=1 avg300=0 total=5\n", 12.34),
    ])
    func parsesPSI(text: String, avg10: Double) throws {
        #expect(try parsePSISomeAvg10(text) == avg10)
    }

    @Test(arguments: ["", "some avg60=1.00\n", "some avg10=x avg60=0\n", "some avg10=-1 avg60=0\n"])
    func rejectsMalformedPSI(text: String) {
        #expect(throws: HostFSError.self) { try parsePSISomeAvg10(text) }
    }

    @Test func kernelConfigOptionIsOnOnlyWhenSetToY() {
        #expect(kernelConfigEnabled("CONFIG_A=y\nCONFIG_MEMORY_FAILURE=y\n", option: "CONFIG_MEMORY_FAILURE"))
        #expect(!kernelConfigEnabled("# CONFIG_MEMORY_FAILURE is not set\n", option: "CONFIG_MEMORY_FAILURE"))
        #expect(!kernelConfigEnabled("CONFIG_MEMORY_FAILURE_X=y\n", option: "CONFIG_MEMORY_FAILURE"))
        #expect(!kernelConfigEnabled("", option: "CONFIG_MEMORY_FAILURE"))
    }
}
