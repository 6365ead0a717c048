#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CScanKernel
import Testing
@testable import ScanWorkers

private let systemPage = Int(sysconf(Int32(_SC_PAGESIZE)))

private final class ResultBox<T>: @unchecked Sendable { var value: T? }
private final class ThreadStart { let run: () -> Void; init(_ run: @escaping () -> Void) { self.run = run } }

/// Runs `body` on a new OS thread (not a Swift task: the scan kernel's state is per thread) and
/// waits for it.
func onThread<T: Sendable>(_ body: @escaping @Sendable () -> T) -> T {
    let box = ResultBox<T>()
    let start = ThreadStart { box.value = body() }
    var thread = pthread_t()
    let rc = pthread_create(&thread, nil, { raw in
        Unmanaged<ThreadStart>.fromOpaque(raw!).takeRetainedValue().run()
        return nil
    }, Unmanaged.passRetained(start).toOpaque())
    precondition(rc == 0, "pthread_create: \(rc)")
    pthread_join(thread, nil)
    return box.value!
}

@Suite("Faults: real SIGBUS survived, counted once, page replaced")
struct FaultTests {
    @Test("a truncated-memfd page in the region: one fault, page replaced, the rest of the pass verified",
          arguments: [RegionBacking.memfd, .anonymous])
    func lostBackingSurvived(backing: RegionBacking) throws {
        let region = try ScanRegion(bytes: 16 * systemPage, name: "lost", lock: true, backing: backing)
        let wordsPerPage = UInt64(systemPage / 8)
        region.fill(pages: 0..<16, seed: 100, invert: false)
        try region.injectBitFlip(wordIndex: 12 * systemPage / 8 + 3, mask: 0x8000)   // after the bad page
        try region.injectLostBacking(page: 5)
        let next = (seed: UInt64(101), invert: true)
        let first = region.verify(pages: 0..<16, seed: 100, invert: false, refill: next)
        #expect(first.faults.count == 1)
        let fault = try #require(first.faults.first)
        #expect(fault.pageIndex == 5)
        #expect(fault.siCode == SigbusSiCode.adrerr)
        #expect(fault.outcome == .lostBacking)
        #expect(region.pageIndex(ofAddress: fault.address) == 5)
        #expect(first.pagesVerified == 15)
        #expect(first.wordsChecked == 15 * wordsPerPage)
        #expect(first.corruptedWords == 1)       // the flip after the bad page was still found
        #expect(first.flips0to1 + first.flips1to0 == 1)
        #expect(region.retiredPages == 1)
        // The replacement holds the next pattern: the next pass is clean and complete.
        let second = region.verify(pages: 0..<16, seed: next.seed, invert: next.invert, refill: (102, false))
        #expect(second.faults.isEmpty)
        #expect(second.corruptedWords == 0)
        #expect(second.pagesVerified == 16 && second.wordsChecked == 16 * wordsPerPage)
        #expect(region.retiredPages == 1)
    }

    // The SIMD verify reads each 256 KiB chunk as 4 interleaved streams (CScanKernel/kernel.c), so
    // a fault stops the chunk part-way through every stream; fault.c rolls back (verify only) or
    // resumes line by line (refill). Faulting pages here sit in different streams of one chunk and in
    // a later chunk, with flips before, between and after them (more than the 16 recorded
    // individually), so a line counted twice or skipped shows in the totals or the first 16.
    @Test("faults inside a multi-stream chunk: every flip outside the faulting pages counted once, the first 16 in address order",
          arguments: [false, true])
    func faultsInsideAStreamChunk(refill: Bool) throws {
        let pages = 160   // 2.5 chunks of 64 pages
        let wordsPerPage = systemPage / 8
        var rng = SplitMix64(seed: refill ? 2024 : 2025)
        // A fixed set (two streams of chunk 0, two pages of one stream, the last stream of chunk 1,
        // the short tail), then random ones.
        var sets: [Set<Int>] = [[3, 37, 40, 114, 159]]
        for _ in 0..<5 { sets.append(Set((0..<Int(rng.next() % 6 + 1)).map { _ in Int(rng.next() % UInt64(pages)) })) }
        for (round, bad) in sets.enumerated() {
            let region = try ScanRegion(bytes: pages * systemPage, name: "chunk-faults", lock: false)
            let seed = rng.next()
            region.fill(pages: 0..<pages, seed: seed, invert: round % 2 == 0)
            var flips = ExpectedFlips()
            for _ in 0..<80 {
                let word = Int(rng.next() % UInt64(pages * wordsPerPage))
                let mask = rng.next() | 1
                try region.injectBitFlip(wordIndex: word, mask: mask)
                if !bad.contains(word / wordsPerPage) { flips.add(word: word, mask: mask) }
            }
            for page in bad { try region.injectLostBacking(page: page) }
            let want = flips.counts(base: region.base, seed: seed, invert: round % 2 == 0)
            let next = (seed: rng.next(), invert: round % 2 != 0)
            let r = onThread { region.verify(pages: 0..<pages, seed: seed, invert: round % 2 == 0, refill: refill ? next : nil) }
            #expect(Set(r.faults.map(\.pageIndex)) == bad && r.faults.count == bad.count, "round \(round)")
            #expect(r.pagesVerified == pages - bad.count, "round \(round)")
            #expect(r.wordsChecked == UInt64((pages - bad.count) * wordsPerPage), "round \(round)")
            #expect(r.corruptedWords == want.words, "round \(round)")
            #expect(r.flips0to1 == want.up && r.flips1to0 == want.down, "round \(round)")
            #expect(r.mismatches == Array(want.mismatches.prefix(ScanRegion.maxMismatchesPerChunk)), "round \(round)")
            // Every page (the replaced ones included) now holds the pattern the next pass expects.
            let after = refill ? next : (seed: seed, invert: round % 2 == 0)
            let again = region.verify(pages: 0..<pages, seed: after.seed, invert: after.invert, refill: nil)
            #expect(again.faults.isEmpty && again.pagesVerified == pages, "round \(round)")
            #expect(again.corruptedWords == (refill ? 0 : want.words), "round \(round)")
        }
    }

    // The rewrite of a chunk runs after its verify; a page that loses its backing in between (a race
    // in real life: poisoned or truncated after it was read) faults in the fill. Made deterministic
    // with the kernel's test hook, which runs between the two phases.
    @Test("a page that faults between its chunk's verify and rewrite: counted as a fault, the rest rewritten")
    func faultBetweenVerifyAndRewrite() throws {
        let pages = 128
        let victim = 70   // in the second chunk, not its first page
        let region = try ScanRegion(bytes: pages * systemPage, name: "fill-race", lock: false)
        let wordsPerPage = systemPage / 8
        region.fill(pages: 0..<pages, seed: 3, invert: false)
        let flipWords = [5, 64 * wordsPerPage + 17, 71 * wordsPerPage, 100 * wordsPerPage + 9]
        for w in flipWords { try region.injectBitFlip(wordIndex: w, mask: 0x11) }
        final class Hook { let region: ScanRegion; let page: Int; var fired = 0
            init(_ r: ScanRegion, _ p: Int) { region = r; page = p } }
        let hook = Hook(region, victim)
        let ctx = Unmanaged.passRetained(hook)
        defer { ctx.release() }
        let ctxBits = UInt(bitPattern: ctx.toOpaque())
        let r = onThread { () -> ChunkResult in
            mcescan_test_set_fill_hook({ raw, chunk, bytes in
                let h = Unmanaged<Hook>.fromOpaque(raw!).takeUnretainedValue()
                let start = (chunk! - h.region.base) / h.region.pageSize
                if (start..<(start + bytes / h.region.pageSize)).contains(h.page) {
                    h.fired += 1
                    try? h.region.injectLostBacking(page: h.page)
                }
            }, UnsafeMutableRawPointer(bitPattern: ctxBits))
            defer { mcescan_test_set_fill_hook(nil, nil) }
            return region.verify(pages: 0..<pages, seed: 3, invert: false, refill: (4, true))
        }
        #expect(hook.fired == 1)
        #expect(r.faults.map(\.pageIndex) == [victim])
        #expect(r.pagesVerified == pages - 1)
        #expect(r.wordsChecked == UInt64((pages - 1) * wordsPerPage))
        #expect(r.corruptedWords == UInt64(flipWords.count))
        // Every page, the victim's replacement and the pages after it in its chunk included, holds the next pattern.
        let again = region.verify(pages: 0..<pages, seed: 4, invert: true, refill: nil)
        #expect(again.faults.isEmpty && again.corruptedWords == 0 && again.pagesVerified == pages)
    }

    // Pages of 2 MiB (the hugetlb sweep) are larger than a chunk: each is its own chunk, read in
    // 4 streams of 512 KiB. The page size is only a parameter of the sweep, so ordinary 4 KiB
    // memory stands in for huge pages here; one lost 4 KiB page makes its whole 2 MiB page fault.
    @Test("pages larger than a chunk: a fault anywhere in one loses that page only", arguments: [false, true])
    func pagesLargerThanAChunk(refill: Bool) throws {
        let huge = 2 << 20
        let region = try ScanRegion(bytes: 3 * huge, name: "big-pages", lock: false, backing: .anonymous)
        region.fill(pages: 0..<region.pageCount, seed: 11, invert: true)
        let wordsPerHuge = huge / 8
        let flips = [7, wordsPerHuge - 1, 2 * wordsPerHuge + 4096, 3 * wordsPerHuge - 8]   // pages 0, 0, 2, 2
        for w in flips { try region.injectBitFlip(wordIndex: w, mask: 0x100) }
        try region.injectLostBacking(page: (huge + huge / 2) / systemPage + 3)   // inside big page 1
        let base = UInt(bitPattern: region.base)
        let r = onThread { () -> (done: Int, words: UInt64, corrupted: UInt64, faults: [UInt64]) in
            var out = mcescan_verify_result()
            var faults = mcescan_fault_list()
            let done = mcescan_verify_safe(UnsafeMutableRawPointer(bitPattern: base), huge, 3, 11, 1, refill ? 1 : 0, 12, 0, &out, &faults)
            let pages = withUnsafeBytes(of: &faults.faults) { raw in
                (0..<Int(faults.recorded)).map { raw.load(fromByteOffset: $0 * MemoryLayout<mcescan_fault>.stride, as: mcescan_fault.self).page_index }
            }
            return (done, out.words_checked, out.corrupted_words, pages)
        }
        #expect(r.done == 2)
        #expect(r.faults == [1])
        #expect(r.words == UInt64(2 * wordsPerHuge))
        #expect(r.corrupted == UInt64(flips.count))
        if refill {
            var again = mcescan_verify_result()
            mcescan_verify(region.base, huge, 12, 0, &again)
            mcescan_verify(region.base + 2 * huge, huge, 12, 0, &again)
            #expect(again.corrupted_words == 0 && again.words_checked == UInt64(2 * wordsPerHuge))
        }
    }

    @Test("more faulting pages than one fault list holds: each counted exactly once")
    func manyFaults() throws {
        let region = try ScanRegion(bytes: 300 * systemPage, name: "many", lock: false)
        region.fill(pages: 0..<300, seed: 1, invert: false)
        var rng = SplitMix64(seed: 99)
        var bad = Set<Int>()
        while bad.count < 150 { bad.insert(Int(rng.next() % 300)) }
        for page in bad { try region.injectLostBacking(page: page) }
        let r = region.verify(pages: 0..<300, seed: 1, invert: false, refill: (2, true))
        #expect(r.faults.count == 150)
        #expect(Set(r.faults.map(\.pageIndex)) == bad)
        #expect(r.pagesVerified == 150)
        #expect(r.corruptedWords == 0)
        #expect(region.retiredPages == 150)
        let again = region.verify(pages: 0..<300, seed: 2, invert: true, refill: nil)
        #expect(again.faults.isEmpty && again.corruptedWords == 0 && again.pagesVerified == 300)
    }

    @Test("fill over a page without backing survives: the page is reported and replaced")
    func fillSurvives() throws {
        let region = try ScanRegion(bytes: 8 * systemPage, name: "fill-fault", lock: false)
        try region.injectLostBacking(page: 7)
        try region.injectLostBacking(page: 0)
        let faults = region.fill(pages: 0..<8, seed: 5, invert: true)
        #expect(faults.map(\.pageIndex) == [0, 7])
        #expect(faults.allSatisfy { $0.outcome == .lostBacking })
        let r = region.verify(pages: 0..<8, seed: 5, invert: true, refill: nil)
        #expect(r.faults.isEmpty && r.corruptedWords == 0 && r.pagesVerified == 8)
    }

    @Test("fill over more faulting pages than one fault list holds: each reported once, all replaced")
    func fillManyFaults() throws {
        let region = try ScanRegion(bytes: 200 * systemPage, name: "fill-many", lock: false)
        let bad = Set(stride(from: 1, to: 200, by: 2))   // 100 pages
        for page in bad { try region.injectLostBacking(page: page) }
        let faults = region.fill(pages: 0..<200, seed: 8, invert: false)
        #expect(faults.count == bad.count)
        #expect(Set(faults.map(\.pageIndex)) == bad)
        #expect(region.retiredPages == bad.count)
        let r = region.verify(pages: 0..<200, seed: 8, invert: false, refill: nil)
        #expect(r.faults.isEmpty && r.corruptedWords == 0 && r.pagesVerified == 200)
    }

    @Test("two threads: one region faults every pass, the other's counts stay exact")
    func otherWorkersUnaffected() throws {
        let passes = 40
        let faulty = try ScanRegion(bytes: 32 * systemPage, name: "faulty", lock: false)
        let healthy = try ScanRegion(bytes: 32 * systemPage, name: "healthy", lock: false)
        let faultyResult = onThread { () -> (faults: Int, verified: Int, corrupted: UInt64) in
            var seed: UInt64 = 1000
            faulty.fill(pages: 0..<32, seed: seed, invert: false)
            var faults = 0, verified = 0
            var corrupted: UInt64 = 0
            for pass in 0..<passes {
                try? faulty.injectLostBacking(page: (pass * 7) % 32)
                let r = faulty.verify(pages: 0..<32, seed: seed, invert: pass % 2 == 1, refill: (seed + 1, pass % 2 == 0))
                faults += r.faults.count
                verified += r.pagesVerified
                corrupted += r.corruptedWords
                seed += 1
            }
            return (faults, verified, corrupted)
        }
        let healthyResult = onThread { () -> (corrupted: UInt64, up: UInt64, down: UInt64, verified: Int, faults: Int, want: (UInt64, UInt64, UInt64)) in
            var rng = SplitMix64(seed: 5)
            var seed: UInt64 = 2000
            var total = (corrupted: UInt64(0), up: UInt64(0), down: UInt64(0), verified: 0, faults: 0)
            var want: (UInt64, UInt64, UInt64) = (0, 0, 0)
            for pass in 0..<passes {
                let invert = pass % 2 == 1
                healthy.fill(pages: 0..<32, seed: seed, invert: invert)
                var flips = ExpectedFlips()
                for _ in 0..<3 {
                    let word = Int(rng.next() % UInt64(healthy.byteCount / 8)), mask = rng.next() | 1
                    try? healthy.injectBitFlip(wordIndex: word, mask: mask)
                    flips.add(word: word, mask: mask)
                }
                let w = flips.counts(base: healthy.base, seed: seed, invert: invert)
                want = (want.0 + w.words, want.1 + w.up, want.2 + w.down)
                let r = healthy.verify(pages: 0..<32, seed: seed, invert: invert, refill: nil)
                total.corrupted += r.corruptedWords
                total.up += r.flips0to1
                total.down += r.flips1to0
                total.verified += r.pagesVerified
                total.faults += r.faults.count
                seed += 1
            }
            return (total.corrupted, total.up, total.down, total.verified, total.faults, want)
        }
        // Both threads ran to completion in one process (we are still here), then:
        #expect(faultyResult.faults == passes)
        #expect(faultyResult.verified == passes * 31)
        #expect(faultyResult.corrupted == 0)
        #expect(healthyResult.faults == 0)
        #expect(healthyResult.verified == passes * 32)
        #expect(healthyResult.corrupted == healthyResult.want.0)
        #expect(healthyResult.up == healthyResult.want.1)
        #expect(healthyResult.down == healthyResult.want.2)
    }

    @Test("both threads at once, each faulting in its own region: every fault lands on its own thread")
    func concurrentFaults() throws {
        final class Job: @unchecked Sendable {
            let region: ScanRegion
            let index: Int
            var faults = 0, verified = 0   // written by its thread only, read after the join
            init(_ region: ScanRegion, _ index: Int) { self.region = region; self.index = index }
        }
        let jobs = try (0..<2).map { Job(try ScanRegion(bytes: 64 * systemPage, name: "conc\($0)", lock: false), $0) }
        var threads: [pthread_t] = []
        for job in jobs {
            var t = pthread_t()
            pthread_create(&t, nil, { raw in
                let job = Unmanaged<Job>.fromOpaque(raw!).takeRetainedValue()
                job.region.fill(pages: 0..<64, seed: 1, invert: false)
                for pass in 0..<60 {
                    try? job.region.injectLostBacking(page: (pass * 13 + job.index) % 64)
                    let r = job.region.verify(pages: 0..<64, seed: 1, invert: false, refill: (1, false))
                    job.faults += r.faults.count
                    job.verified += r.pagesVerified
                }
                return nil
            }, Unmanaged.passRetained(job).toOpaque())
            threads.append(t)
        }
        for t in threads { pthread_join(t, nil) }
        #expect(jobs.map(\.faults) == [60, 60])
        #expect(jobs.map(\.verified) == [60 * 63, 60 * 63])
    }

    @Test("an out-of-scan poison notice (BUS_MCEERR_AO) for our region is recorded, not fatal; the page is retired")
    func asyncPoisonNotice() throws {
        let region = try ScanRegion(bytes: 8 * systemPage, name: "async", lock: false)
        region.fill(pages: 0..<8, seed: 77, invert: false)
        let address = region.base + 6 * systemPage + 64
        #expect(mcescan_raise_sigbus(address, SigbusSiCode.mceerrAO, 12) == 0)
        // The same page named twice is retired once.
        #expect(mcescan_raise_sigbus(address + 8, SigbusSiCode.mceerrAO, 12) == 0)
        let notices = region.retireAsyncPoison(seed: 77, invert: false)
        #expect(notices.map(\.pageIndex) == [6])
        #expect(notices.first?.outcome == .poisoned)
        #expect(notices.first?.address == UInt(bitPattern: address))
        #expect(region.retiredPages == 1)
        #expect(region.retireAsyncPoison(seed: 77, invert: false).isEmpty)
        let r = region.verify(pages: 0..<8, seed: 77, invert: false, refill: nil)
        #expect(r.faults.isEmpty && r.corruptedWords == 0 && r.pagesVerified == 8)
        #expect(ScanKernel.asyncPoisonDropped == 0)
    }

    @Test("the out-of-scan table is per region: a notice for another region stays for its owner")
    func asyncPoisonPerRegion() throws {
        let a = try ScanRegion(bytes: 4 * systemPage, name: "async-a", lock: false)
        let b = try ScanRegion(bytes: 4 * systemPage, name: "async-b", lock: false)
        #expect(mcescan_raise_sigbus(b.base + systemPage, SigbusSiCode.mceerrAO, 12) == 0)
        #expect(a.retireAsyncPoison(seed: 0, invert: false).isEmpty)
        #expect(b.retireAsyncPoison(seed: 0, invert: false).map(\.pageIndex) == [1])
    }
}

/// Path of the `mcescan-crashtest` helper, built next to the test bundle.
func crashTestPath() -> String? {
    var buf = [CChar](repeating: 0, count: 4096)
    let n = readlink("/proc/self/exe", &buf, buf.count - 1)
    guard n > 0 else { return nil }
    var exe = String(decoding: buf.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    while let last = exe.last, last != "/" { exe.removeLast() }
    // The test runner is either the .xctest binary in the build directory, or swiftpm-testing-helper
    // elsewhere; try the build directory of the bundle in argv as well.
    var candidates = [exe + "mcescan-crashtest"]
    for arg in CommandLine.arguments where arg.contains(".xctest") {
        var dir = arg
        while let last = dir.last, last != "/" { dir.removeLast() }
        candidates.append(dir + "mcescan-crashtest")
    }
    return candidates.first { access($0, X_OK) == 0 }
}

/// Runs the helper with SWIFT_BACKTRACE=enable=no and stdin from /dev/null; returns the wait status
/// and what it wrote to stdout.
func runCrashTest(_ path: String, mode: String) throws -> (status: Int32, stdout: String) {
    var template = Array("/tmp/mcescan-crashtest-XXXXXX".utf8CString)
    let outFD = mkstemp(&template)
    try #require(outFD >= 0)
    let outPath = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    defer { close(outFD); unlink(outPath) }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_adddup2(&actions, outFD, 1)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    let argv: [UnsafeMutablePointer<CChar>?] = [strdup(path), strdup(mode), nil]
    // Sanitizer runtimes (TSan/ASan lanes) would turn the fatal signal into their own report and exit
    // code: leave SIGBUS/SIGSEGV to the program, as in a production build.
    let envp: [UnsafeMutablePointer<CChar>?] = [strdup("SWIFT_BACKTRACE=enable=no"), strdup("PATH=/usr/bin:/bin"),
        strdup("TSAN_OPTIONS=handle_segv=0:handle_sigbus=0"), strdup("ASAN_OPTIONS=handle_segv=0:handle_sigbus=0"), nil]
    defer { (argv + envp).forEach { free($0) } }
    var pid = pid_t()
    let rc = posix_spawn(&pid, path, &actions, nil, argv, envp)
    try #require(rc == 0, "posix_spawn \(path): \(rc)")
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    var text = [UInt8](repeating: 0, count: 4096)
    let n = pread(outFD, &text, text.count, 0)
    return (status, String(decoding: text.prefix(max(0, n)), as: UTF8.self))
}

@Suite("Faults outside a scan still crash (child process)")
struct CrashTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var mode: String
        var signal: Int32?   // nil: must exit 0
        var testDescription: String { mode }
    }

    @Test("unarmed faults die of their signal after a recovered one; a registered-region notice is survived",
          arguments: [Case(mode: "unarmed-sigbus", signal: SIGBUS), Case(mode: "unarmed-segv", signal: SIGSEGV),
                      Case(mode: "async-unregistered", signal: SIGBUS), Case(mode: "async-registered", signal: nil),
                      Case(mode: "async-ar-repeat", signal: SIGBUS)])
    func childProcess(_ c: Case) throws {
        let path = try #require(crashTestPath(), "mcescan-crashtest not found next to the test bundle: build with `swift build --build-tests`")
        let (status, out) = try runCrashTest(path, mode: c.mode)
        let termSig = status & 0x7f
        let exited = termSig == 0
        let exitCode = (status >> 8) & 0xff
        #expect(out.contains("recovered fault in scan"), "the child did not get through its recovered fault: \(out)")
        if c.mode == "async-ar-repeat" { #expect(out.contains("first action-required notice recorded"), "\(out)") }
        if let signal = c.signal {
            // Death by the signal (a shell would report 128 + signal, e.g. 135 for SIGBUS).
            #expect(!exited && termSig == signal, "status \(status): \(out)")
        } else {
            #expect(exited && exitCode == 0, "status \(status): \(out)")
        }
    }
}
