@testable import HostFS
import Testing

@Suite struct ProcessStatTests {
    @Test("/proc/self/stat: fields counted from the last ')' of the command name")
    func stat() throws {
        let line = "4242 (weird ) (name) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 125 0 0 39 19 7 0 123456 335568896 4458 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
        let s = try ProcSelfStat.parse(Array(line.utf8))
        #expect(s == ProcSelfStat(userTicks: 250, systemTicks: 125, threads: 7, startTicks: 123456, virtualBytes: 335568896, residentPages: 4458))
    }

    @Test("malformed stat is an error, not a crash", arguments: ["", "4242 no parens S 1", "1 (x) S 1 2", "1 (x) S a b c d e f g h i j k l m n o p q r s t u v w"])
    func badStat(_ text: String) {
        #expect(throws: HostFSError.self) { try ProcSelfStat.parse(Array(text.utf8)) }
    }

    @Test("limits: soft values, unlimited as UInt64.max")
    func limits() throws {
        let text = """
        Limit                     Soft Limit           Hard Limit           Units
        Max cpu time              unlimited            unlimited            seconds
        Max open files            1024                 1048576              files
        Max address space         unlimited            unlimited            bytes

        """
        #expect(try ProcLimits.parse(text) == ProcLimits(openFilesSoft: 1024, addressSpaceSoft: .max))
        #expect(try ProcLimits.parse("Limit Soft\n") == ProcLimits(openFilesSoft: nil, addressSpaceSoft: nil))
        #expect(throws: HostFSError.self) { try ProcLimits.parse("Max open files            lots   1 files\n") }
    }

    @Test("boot time and heap")
    func bootAndHeap() throws {
        #expect(try parseBootTime("cpu  1 2 3\nbtime 1795000000\nprocesses 5\n") == 1_795_000_000)
        #expect(throws: HostFSError.self) { try parseBootTime("cpu 1 2 3\n") }
        let maps = "55d4c8a2e000-55d4c8a4f000 r-xp 00000000 fd:01 1 /bin/x\n55d4c9000000-55d4c9064000 rw-p 00000000 00:00 0                          [heap]\n"
        #expect(parseHeapBytes(maps) == 0x64000)
        #expect(parseHeapBytes("7f00-7f10 rw-p 0 0 0 [stack]\n") == nil)
    }

    @Test func capEff() {
        let status = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000001fffeffffff\nCapBnd:\t000001ffffffffff\n"
        #expect(parseCapEff(status) == 0x1fffeffffff)
        #expect(parseCapEff("Name:\tx\n") == nil)
        #expect(parseCapEff("CapEff:\tzz\n") == nil)
    }
}
