import HostFS
import MetricsExporter
import ScanWorkers
import Testing

@Suite struct KPageFlagsTests {
    @Test func flagBitsMatchTheKernelHeader() {
        // include/uapi/linux/kernel-page-flags.h
        #expect(KPageFlag.slab.rawValue == 7)
        #expect(KPageFlag.buddy.rawValue == 10)
        #expect(KPageFlag.anon.rawValue == 12)
        #expect(KPageFlag.huge.rawValue == 17)
        #expect(KPageFlag.hwpoison.mask == 1 << 19)
        #expect(KPageFlag.thp.rawValue == 22)
        #expect(KPageFlag.offline.rawValue == 23)
        #expect(KPageFlag.pgtable.rawValue == 26)
    }

    static let classification: [(UInt64, HwpoisonPageType)] = [
        (flags(.buddy), .buddy),
        (flags(.huge, .compoundHead), .hugetlb),
        (flags(.huge, .compoundTail, .anon), .hugetlb),          // HUGE wins over ANON
        (flags(.thp, .compoundHead, .anon, .lru), .thp),         // THP wins over ANON
        (flags(.slab), .slab),
        (flags(.pgtable), .pgtable),
        (flags(.offline), .offline),
        (flags(.anon, .lru, .swapbacked), .anon),
        (flags(.lru, .uptodate, .mmap), .file),
        (flags(.dirty), .file),
        (flags(.swapbacked), .file),                               // shmem
        (flags(.writeback), .file),
        (0, .other),
        (flags(.zeroPage), .other),
        (flags(.nopage, .error), .other),
    ]

    @Test(arguments: classification)
    func classify(_ flags: UInt64, _ expected: HwpoisonPageType) {
        #expect(HwpoisonPageType.classify(flags) == expected)
        // The HWPOISON bit itself does not change the type.
        #expect(HwpoisonPageType.classify(flags | KPageFlag.hwpoison.mask) == expected)
    }

    @Test func labelsAreTheSpecPageTypes() {
        #expect(HwpoisonPageType.allCases.map(\.label) == ["buddy", "hugetlb", "thp", "slab", "anon", "file", "pgtable", "offline", "other"])
    }

    @Test func censusOfInlineBytesCountsOnlyPoisonedEntries() throws {
        let poison = KPageFlag.hwpoison.mask
        var entries: [UInt64] = []
        var expected = HwpoisonCounts()
        // Every classification case once clean and once poisoned.
        for (f, type) in Self.classification {
            entries.append(f)
            entries.append(f | poison)
            expected[type] += 1
        }
        let counts = try HwpoisonCounts.parse(kpageflagsBytes(entries))
        #expect(counts.examined == UInt64(entries.count))
        for type in HwpoisonPageType.allCases {
            #expect(counts[type] == expected[type], "\(type.label)")
        }
        #expect(counts.poisoned == UInt64(Self.classification.count))
    }

    @Test func emptyInputIsAnEmptyCensus() throws {
        let counts = try HwpoisonCounts.parse([])
        #expect(counts.examined == 0)
        #expect(counts.poisoned == 0)
    }

    @Test(arguments: [1, 7, 9, 15])
    func partialEntriesAreMalformed(_ length: Int) {
        #expect(throws: HostFSError.self) { try HwpoisonCounts.parse(Array(repeating: 0, count: length)) }
        do {
            _ = try HwpoisonCounts.parse(Array(repeating: 0, count: length))
        } catch {
            #expect(error.code == .malformed)
            #expect(error.message.contains("8-byte"))
        }
    }

    static let goodBlockSizes: [(String, UInt64)] = [
        ("8000000\n", 0x800_0000), ("8000", 0x8000), ("0x8000\n", 0x8000), ("80000000\n", 0x8000_0000), (" 1000 \n", 0x1000),
    ]

    @Test(arguments: goodBlockSizes)
    func blockSize(_ text: String, _ expected: UInt64) throws {
        #expect(try MemoryBlockLayout.parseBlockSize(Array(text.utf8)) == expected)
    }

    @Test(arguments: ["", "\n", "0", "0x", "zz", "-8000", "8000 0", "134217728k", "1ffffffffffffffff"])
    func badBlockSize(_ text: String) {
        do {
            _ = try MemoryBlockLayout.parseBlockSize(Array(text.utf8))
            Issue.record("accepted \"\(text)\"")
        } catch {
            #expect(error.code == .malformed)
            #expect(error.path.hasSuffix("block_size_bytes"))
        }
    }

    @Test(arguments: [("memory0", UInt64(0)), ("memory42", 42), ("memory", nil), ("memoryx", nil), ("block_size_bytes", nil), ("memory1a", nil)])
    func blockNames(_ name: String, _ index: UInt64?) {
        #expect(MemoryBlockLayout.blockIndex(name) == index)
    }

    @Test(arguments: [("node0", 0), ("node17", 17), ("node", nil), ("nodes", nil), ("node-1", nil), ("has_memory", nil)])
    func nodeNames(_ name: String, _ node: Int?) {
        #expect(MemoryBlockLayout.nodeIndex(name) == node)
    }

    @Test func adjacentBlocksMergeIntoOneRangePerRun() throws {
        let layout = MemoryBlockLayout(blockSizeBytes: 0x8000, blocks: [
            MemoryBlock(index: 3, node: 0), MemoryBlock(index: 0, node: 0), MemoryBlock(index: 1, node: 0),
            MemoryBlock(index: 2, node: 1), MemoryBlock(index: 9, node: 1), MemoryBlock(index: 10, node: 1),
        ])
        let ranges = try layout.pfnRanges(pageSize: 4096)
        #expect(ranges.map(\.node) == [0, 1])
        #expect(ranges[0].ranges == [0..<16, 24..<32])
        #expect(ranges[1].ranges == [16..<24, 72..<88])
    }

    @Test(arguments: [UInt64.max, UInt64(Int64.max) / 8, 1 << 50, 1 << 45])
    func blockIndexBeyondAnyFileOffsetIsMalformed(_ index: UInt64) {
        let layout = MemoryBlockLayout(blockSizeBytes: 0x8000000, blocks: [MemoryBlock(index: index, node: 0)])
        do {
            _ = try layout.pfnRanges(pageSize: 4096)
            Issue.record("accepted block index \(index)")
        } catch {
            #expect(error.code == .malformed)
        }
    }

    @Test func blockSizeMustBeWholePages() {
        let layout = MemoryBlockLayout(blockSizeBytes: 0x1800, blocks: [MemoryBlock(index: 0, node: 0)])
        #expect(throws: HostFSError.self) { try layout.pfnRanges(pageSize: 4096) }
    }

    @Test func fixtureLayoutUsesLinksFromBothSidesAndSkipsUnlinkedBlocks() throws {
        let layout = try #require(try MemoryBlockLayout.read(sysfs: fixtureSys))
        #expect(layout.blockSizeBytes == 0x8000)
        // memory9 is linked only from node1/memory9; memory10 has no node; memory6/7 do not exist.
        #expect(layout.blocks.map(\.index) == [0, 1, 2, 3, 4, 5, 8, 9])
        #expect(layout.blocks.map(\.node) == [0, 0, 0, 0, 1, 1, 1, 1])
    }

    @Test func noMemoryDirectoryMeansNoLayout() throws {
        let t = TempTree()
        defer { t.remove() }
        t.mkdir("devices/system/node/node0")
        #expect(try MemoryBlockLayout.read(sysfs: t.tree) == nil)
    }

    @Test func withoutNodeDirectoryAllBlocksAreNodeZero() throws {
        let t = TempTree()
        defer { t.remove() }
        t.write("devices/system/memory/block_size_bytes", "8000\n")
        t.mkdir("devices/system/memory/memory0")
        t.mkdir("devices/system/memory/memory2")
        let layout = try #require(try MemoryBlockLayout.read(sysfs: t.tree))
        #expect(layout.blocks == [MemoryBlock(index: 0, node: 0), MemoryBlock(index: 2, node: 0)])
    }

    @Test func aBlockOnTwoNodesIsMalformed() {
        let t = TempTree()
        defer { t.remove() }
        t.write("devices/system/memory/block_size_bytes", "8000\n")
        t.mkdir("devices/system/memory/memory0/node0")
        t.mkdir("devices/system/node/node1/memory0")
        do {
            _ = try MemoryBlockLayout.read(sysfs: t.tree)
            Issue.record("accepted a block on two nodes")
        } catch {
            #expect(error.code == .malformed)
            #expect(error.message.contains("node0") && error.message.contains("node1"))
        }
    }
}

@Suite struct DurationFlagTests {
    static let good: [(String, Double)] = [
        ("60s", 60), ("5m", 300), ("1h", 3600), ("1h30m", 5400), ("1500ms", 1.5), ("1d", 86400), ("2m30s", 150),
    ]

    @Test(arguments: good)
    func accepted(_ text: String, _ seconds: Double) throws {
        #expect(try HwpoisonCollector.parseInterval(text) == seconds)
    }

    @Test(arguments: ["", "60", "s", "5x", "1.5s", "-5s", "5s1m", "1m1m", "5 s", "60S"])
    func notADuration(_ text: String) {
        do {
            _ = try HwpoisonCollector.parseInterval(text)
            Issue.record("accepted \"\(text)\"")
        } catch {
            #expect(error.message.hasPrefix("--collector.hwpoison.interval: "))
            #expect(error.message.contains("is not a duration"))
            #expect(error.message.contains("1s-24h"))
        }
    }

    @Test(arguments: ["0s", "999ms", "25h", "2d", "1w"])
    func outOfRange(_ text: String) {
        do {
            _ = try HwpoisonCollector.parseInterval(text)
            Issue.record("accepted \"\(text)\"")
        } catch {
            #expect(error.message == "--collector.hwpoison.interval: \(text) is out of range (1s-24h)")
        }
    }
}
