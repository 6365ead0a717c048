import HostFS
import Logging
import MetricsExporter
import ScanWorkers
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite struct MemoryFailureTests {
    @Test func fixtureHasEveryNodeAndResult() throws {
        let log = RecordingLog()
        let families = try collect(MemoryFailureCollector(sysfs: fixtureSys, logger: log.logger))
        let family = try #require(families["mcescan_kernel_memory_failure_pages_total"])
        #expect(family.type == .counter)
        #expect(family.metrics.count == 2 * 4)
        // The fixture's per-node files (scripts/gen-fixtures MEMORY_FAILURE), read back as sysfs text.
        for node in 0...1 {
            for result in MemoryFailureCollector.results {
                let text = try fixtureSys.readString("devices/system/node/node\(node)/memory_failure/\(result)")
                #expect(value(family, ["node": "\(node)", "result": result]) == Double(text.trimmingCharacters(in: "\n")))
            }
        }
        #expect(log.messages.isEmpty)
    }

    @Test func zeroSeriesForEveryResultFromTheStart() throws {
        let t = TempTree()
        defer { t.remove() }
        for r in ["ignored", "failed", "delayed", "recovered", "total"] {
            t.write("devices/system/node/node3/memory_failure/\(r)", "0\n")
        }
        t.write("devices/system/node/node3/cpulist", "0\n")
        let family = try #require(try collect(MemoryFailureCollector(sysfs: t.tree, logger: RecordingLog().logger))["mcescan_kernel_memory_failure_pages_total"])
        #expect(family.metrics.count == 4)
        for r in MemoryFailureCollector.results {
            #expect(value(family, ["node": "3", "result": r]) == 0)
        }
    }

    @Test func missingSourceEmitsNothingAndDoesNotFail() throws {
        let t = TempTree()
        defer { t.remove() }
        #expect(try collect(MemoryFailureCollector(sysfs: t.tree, logger: RecordingLog().logger)).isEmpty)
        t.mkdir("devices/system/node/node0")  // a kernel without memory_failure stats
        #expect(try collect(MemoryFailureCollector(sysfs: t.tree, logger: RecordingLog().logger)).isEmpty)
    }

    @Test func aDirectoryWhereAFileShouldBeFails() {
        #expect(throws: HostFSError.self) {
            try collect(MemoryFailureCollector(sysfs: brokenSys, logger: RecordingLog().logger))
        }
        do {
            _ = try collect(MemoryFailureCollector(sysfs: brokenSys, logger: RecordingLog().logger))
        } catch let error as HostFSError {
            #expect(error.code == .unreadable)
            #expect(error.path.hasSuffix("node0/memory_failure/failed"))
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func malformedContentFails() {
        let t = TempTree()
        defer { t.remove() }
        for r in ["ignored", "failed", "delayed", "recovered"] { t.write("devices/system/node/node0/memory_failure/\(r)", "1\n") }
        t.write("devices/system/node/node0/memory_failure/delayed", "many\n")
        #expect(throws: HostFSError.self) { try collect(MemoryFailureCollector(sysfs: t.tree, logger: RecordingLog().logger)) }
    }

    @Test func aPartialDirectoryFails() {
        let t = TempTree()
        defer { t.remove() }
        t.write("devices/system/node/node0/memory_failure/total", "0\n")
        #expect(throws: HostFSError.self) { try collect(MemoryFailureCollector(sysfs: t.tree, logger: RecordingLog().logger)) }
    }

    @Test func totalMismatchIsLoggedOncePerNodeAndStillExported() throws {
        let t = TempTree()
        defer { t.remove() }
        for node in 0...1 {
            for (r, v) in [("ignored", 1), ("failed", 1), ("delayed", 1), ("recovered", 1), ("total", node == 0 ? 9 : 4)] {
                t.write("devices/system/node/node\(node)/memory_failure/\(r)", "\(v)\n")
            }
        }
        let log = RecordingLog()
        let collector = MemoryFailureCollector(sysfs: t.tree, logger: log.logger)
        for _ in 0..<3 {
            let family = try #require(try collect(collector)["mcescan_kernel_memory_failure_pages_total"])
            #expect(value(family, ["node": "0", "result": "recovered"]) == 1)
        }
        #expect(log.messages.count == 1)
        #expect(log.messages.first?.contains("total differs") == true)
    }
}

@Suite struct EdacScrubTests {
    @Test func fixtureInstancesAndOnlyTheAttributesTheDriverHas() throws {
        let families = try collect(EdacScrubCollector(sysfs: fixtureSys))
        #expect(Set(families.keys) == ["mcescan_edac_scrub_background_enabled", "mcescan_edac_scrub_cycle_seconds",
                                       "mcescan_edac_scrub_min_cycle_seconds", "mcescan_edac_scrub_max_cycle_seconds"])
        let s0 = ["device": "cxl_mem0", "scrub": "scrub0"]
        let s1 = ["device": "cxl_mem0", "scrub": "scrub1"]
        for (file, family) in [("enable_background", "mcescan_edac_scrub_background_enabled"),
                               ("current_cycle_duration", "mcescan_edac_scrub_cycle_seconds"),
                               ("min_cycle_duration", "mcescan_edac_scrub_min_cycle_seconds"),
                               ("max_cycle_duration", "mcescan_edac_scrub_max_cycle_seconds")] {
            let text = try fixtureSys.readString("bus/edac/devices/cxl_mem0/scrub0/\(file)")
            #expect(value(families[family], s0) == Double(text.trimmingCharacters(in: "\n")), "\(family)")
        }
        // scrub1 implements only enable_background and current_cycle_duration; mc0 has no scrub.
        #expect(families["mcescan_edac_scrub_background_enabled"]?.metrics.count == 2)
        #expect(value(families["mcescan_edac_scrub_cycle_seconds"], s1) != nil)
        #expect(families["mcescan_edac_scrub_min_cycle_seconds"]?.metrics.count == 1)
        #expect(families.values.allSatisfy { $0.type == .gauge && !$0.help.isEmpty })
    }

    @Test func missingSourceEmitsNothing() throws {
        let t = TempTree()
        defer { t.remove() }
        #expect(try collect(EdacScrubCollector(sysfs: t.tree)).isEmpty)
        t.write("bus/edac/devices/mc0/mc_name", "x\n")  // EDAC without scrub control
        #expect(try collect(EdacScrubCollector(sysfs: t.tree)).isEmpty)
    }

    @Test func malformedOrUnreadableAttributeFails() {
        let t = TempTree()
        defer { t.remove() }
        t.write("bus/edac/devices/cxl_mem0/scrub0/enable_background", "1\n")
        t.write("bus/edac/devices/cxl_mem0/scrub0/current_cycle_duration", "soon\n")
        #expect(throws: HostFSError.self) { try collect(EdacScrubCollector(sysfs: t.tree)) }
        let u = TempTree()
        defer { u.remove() }
        u.mkdir("bus/edac/devices/cxl_mem0/scrub0/enable_background")  // a directory: EISDIR
        #expect(throws: HostFSError.self) { try collect(EdacScrubCollector(sysfs: u.tree)) }
    }
}

@Suite struct EdacScrubSamplerTests {
    @Test func firstSampleIsTakenAtInitAndScrapesNeverRead() throws {
        let t = TempTree()
        defer { t.remove() }
        t.write("bus/edac/devices/cxl_mem0/scrub0/current_cycle_duration", "3600\n")
        let sampler = EdacScrubSampler(sysfs: t.tree, interval: 3600)
        let collector = EdacScrubCollector(sampler: sampler)
        let key = ["device": "cxl_mem0", "scrub": "scrub0"]
        #expect(value(try collect(collector)["mcescan_edac_scrub_cycle_seconds"], key) == 3600)
        // A change shows only after the next sample: collect copies, it does not read.
        t.write("bus/edac/devices/cxl_mem0/scrub0/current_cycle_duration", "7200\n")
        #expect(value(try collect(collector)["mcescan_edac_scrub_cycle_seconds"], key) == 3600)
        sampler.sample()
        #expect(value(try collect(collector)["mcescan_edac_scrub_cycle_seconds"], key) == 7200)
        // A malformed attribute fails the collector until a good sample.
        t.write("bus/edac/devices/cxl_mem0/scrub0/current_cycle_duration", "later\n")
        sampler.sample()
        #expect(throws: HostFSError.self) { try collect(collector) }
        t.write("bus/edac/devices/cxl_mem0/scrub0/current_cycle_duration", "60\n")
        sampler.sample()
        #expect(value(try collect(collector)["mcescan_edac_scrub_cycle_seconds"], key) == 60)
    }

    @Test func sampleEqualsADirectRead() throws {
        let sampled = try collect(EdacScrubCollector(sampler: EdacScrubSampler(sysfs: fixtureSys)))
        let direct = try collect(EdacScrubCollector(sysfs: fixtureSys))
        #expect(sampled == direct)
    }

    @Test func threadStartsAndStopsPromptly() {
        let sampler = EdacScrubSampler(sysfs: fixtureSys, interval: 3600)
        sampler.start()
        sampler.start()  // a second start does nothing
        sampler.stop()   // wakes the hour-long sleep and joins
        sampler.stop()
        if case .failure(let error) = sampler.last { Issue.record("fixture sample failed: \(error)") }
    }
}

@Suite struct HwpoisonCensusTests {
    /// The census the fixture must give, computed here from the fixture's own bytes and links
    /// (not from the collector): every PFN of a block linked to node N, classified by its bits.
    func expectedFixtureCensus() throws -> [Int: HwpoisonCounts] {
        let bytes = try fixtureProc.readBytes("kpageflags")
        let all = try HwpoisonCounts.parse(bytes)
        #expect(all.poisoned == 14)  // 12 inside node blocks, one in the hole, one in an unlinked block
        var byNode: [Int: HwpoisonCounts] = [:]
        for (index, node) in [(0, 0), (1, 0), (2, 0), (3, 0), (4, 1), (5, 1), (8, 1), (9, 1)] {
            let lo = index * 8 * 8
            byNode[node, default: HwpoisonCounts()] = try merge(byNode[node] ?? HwpoisonCounts(),
                                                               HwpoisonCounts.parse(Array(bytes[lo..<(lo + 64)])))
        }
        return byNode
    }

    func merge(_ a: HwpoisonCounts, _ b: HwpoisonCounts) -> HwpoisonCounts {
        var c = a
        for t in HwpoisonPageType.allCases { c[t] += b[t] }
        c.examined += b.examined
        return c
    }

    @Test(arguments: [1, 3, 8, 8192])
    func fixtureCensusPerNodeAtAnyChunkSize(_ chunk: Int) throws {
        let census = HwpoisonCensus(sysfs: fixtureSys, procfs: fixtureProc, pageSize: 4096, chunkEntries: chunk,
                                    logger: RecordingLog().logger)
        let result = try #require(try census.census())
        let expected = try expectedFixtureCensus()
        #expect(result.nodes.map(\.node) == [0, 1])
        for (node, counts) in result.nodes {
            #expect(counts == expected[node], "node \(node)")
            #expect(counts.examined == 32)
        }
        // Several page types on both nodes.
        #expect(result.nodes.allSatisfy { n in HwpoisonPageType.allCases.filter { n.counts[$0] > 0 }.count >= 4 })
    }

    @Test func collectorExportsEveryPageTypeForEveryNode() throws {
        let census = HwpoisonCensus(sysfs: fixtureSys, procfs: fixtureProc, pageSize: 4096, logger: RecordingLog().logger)
        let collector = HwpoisonCollector(census: census)
        #expect(try collect(collector).isEmpty)  // no census yet: nothing, and no failure
        census.runOnce()
        let families = try collect(collector)
        let pages = try #require(families["mcescan_kernel_hwpoison_pages"])
        #expect(pages.type == .gauge)
        #expect(pages.metrics.count == 2 * 9)
        let expected = try expectedFixtureCensus()
        for node in 0...1 {
            for t in HwpoisonPageType.allCases {
                #expect(value(pages, ["node": "\(node)", "page_type": t.label]) == Double(expected[node]![t]))
            }
        }
        #expect(families["mcescan_kernel_hwpoison_census_timestamp_seconds"] != nil)
        #expect(value(families["mcescan_kernel_hwpoison_census_pages"], ["node": "1"]) == 32)
    }

    @Test func missingKpageflagsOrMemoryBlocksIsAbsent() throws {
        let t = TempTree()
        defer { t.remove() }
        let noProc = HwpoisonCensus(sysfs: fixtureSys, procfs: t.tree, pageSize: 4096, logger: RecordingLog().logger)
        #expect(noProc.runOnce() == .absent)
        #expect(try collect(HwpoisonCollector(census: noProc)).isEmpty)
        let noBlocks = HwpoisonCensus(sysfs: t.tree, procfs: fixtureProc, pageSize: 4096, logger: RecordingLog().logger)
        #expect(noBlocks.runOnce() == .absent)
    }

    @Test func kpageflagsAsADirectoryFailsTheCollectorOnly() throws {
        let t = TempTree()
        defer { t.remove() }
        t.mkdir("kpageflags")
        let log = RecordingLog()
        let census = HwpoisonCensus(sysfs: fixtureSys, procfs: t.tree, pageSize: 4096, logger: log.logger)
        guard case .failed(let error) = census.runOnce() else {
            Issue.record("census of a directory did not fail")
            return
        }
        #expect(error.code == .unreadable)
        census.runOnce()
        #expect(log.messages.count == 1)  // rate-limited
        #expect(throws: HostFSError.self) { try collect(HwpoisonCollector(census: census)) }
    }

    @Test func truncatedEntryIsMalformed() throws {
        let t = TempTree()
        defer { t.remove() }
        t.write("kpageflags", Array(repeating: 0, count: 8 * 10 + 3))
        let census = HwpoisonCensus(sysfs: fixtureSys, procfs: t.tree, pageSize: 4096, logger: RecordingLog().logger)
        guard case .failed(let error) = census.runOnce() else {
            Issue.record("a partial entry was accepted")
            return
        }
        #expect(error.code == .malformed)
    }

    @Test func aShortKpageflagsEndsTheRangeQuietly() throws {
        // The kernel's kpageflags ends at max_pfn; blocks past it have nothing to count.
        let t = TempTree()
        defer { t.remove() }
        t.write("kpageflags", kpageflagsBytes([0, KPageFlag.hwpoison.mask | KPageFlag.slab.mask, 0]))
        let census = HwpoisonCensus(sysfs: fixtureSys, procfs: t.tree, pageSize: 4096, logger: RecordingLog().logger)
        let result = try #require(try census.census())
        #expect(result.nodes.first?.counts[.slab] == 1)
        #expect(result.nodes.first?.counts.examined == 3)
        #expect(result.nodes.last?.counts.examined == 0)
    }

    @Test func backgroundThreadProducesACensusAndStops() throws {
        let census = HwpoisonCensus(sysfs: fixtureSys, procfs: fixtureProc, interval: 3600, pageSize: 4096,
                                    logger: RecordingLog().logger)
        census.start()
        var outcome = census.outcome
        for _ in 0..<1000 where outcome == .pending {
            usleep(10_000)
            outcome = census.outcome
        }
        census.stop()  // returns although the thread would sleep for an hour
        guard case .complete(let result) = outcome else {
            Issue.record("no census completed: \(outcome)")
            return
        }
        #expect(result.nodes.count == 2)
    }
}

@Suite struct RegistryWithKernelCollectorsTests {
    func registry(sysfs: SysFS) -> MetricsRegistry {
        let logger = RecordingLog().logger
        let census = HwpoisonCensus(sysfs: sysfs, procfs: fixtureProc, pageSize: 4096, logger: logger)
        census.runOnce()
        return MetricsRegistry(collectors: [
            ProcessCollector(procfs: fixtureProc, ticksPerSecond: 100, pageSize: 4096),
            MemoryFailureCollector(sysfs: sysfs, logger: logger),
            HwpoisonCollector(census: census),
            EdacScrubCollector(sysfs: sysfs),
        ], logger: logger)
    }

    func success(_ set: MetricSet) -> [String: Double] {
        let family = set.families.first { $0.name == "mcescan_scrape_collector_success" }
        var out: [String: Double] = [:]
        for m in family?.metrics ?? [] {
            if case .double(let v) = m.value { out[m.labels[0].value] = v }
        }
        return out
    }

    @Test func allCollectorsSucceedOnTheFixture() {
        let set = registry(sysfs: fixtureSys).gather()
        #expect(success(set) == ["process": 1, "memory_failure": 1, "hwpoison": 1, "edac_scrub": 1])
    }

    @Test func anUnreadableSourceFailsOnlyItsCollector() {
        let set = registry(sysfs: brokenSys).gather()
        #expect(success(set) == ["process": 1, "memory_failure": 0, "hwpoison": 1, "edac_scrub": 1])
        let names = Set(set.families.map(\.name))
        #expect(!names.contains("mcescan_kernel_memory_failure_pages_total"))
        #expect(names.contains("mcescan_kernel_hwpoison_pages"))
        #expect(names.contains("mcescan_edac_scrub_cycle_seconds"))
        #expect(names.contains("process_open_fds"))
    }

    @Test func everyFamilyHasHelpAndCountersEndInTotal() {
        for family in registry(sysfs: fixtureSys).gather().families {
            #expect(!family.help.isEmpty, "\(family.name)")
            #expect(family.name.hasSuffix("_total") == (family.type == .counter), "\(family.name)")
        }
    }
}
