#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CScanKernel
import Testing
@testable import ScanWorkers

private let systemPage = Int(sysconf(Int32(_SC_PAGESIZE)))

@Suite("ScanRegion: mapping, locking, replacement, bad input")
struct RegionTests {
    struct BadSize: Sendable, CustomTestStringConvertible {
        var bytes: Int
        var backing: RegionBacking
        var testDescription: String { "\(bytes) bytes, \(backing)" }
    }

    @Test("bad sizes and huge page sizes are refused with invalidArgument and a message naming the value",
          arguments: [BadSize(bytes: 0, backing: .memfd), BadSize(bytes: -4096, backing: .anonymous),
                      BadSize(bytes: Int.max, backing: .memfd),
                      BadSize(bytes: 1 << 20, backing: .hugetlb(pageSize: 3 << 20)),
                      BadSize(bytes: 1 << 20, backing: .hugetlb(pageSize: 1024))])
    func badSizes(_ input: BadSize) {
        #expect {
            _ = try ScanRegion(bytes: input.bytes, name: "bad", lock: false, backing: input.backing)
        } throws: { error in
            guard let e = error as? ScanError else { return false }
            return e.code == .invalidArgument && !e.message.isEmpty
        }
    }

    @Test("sizes round up to whole pages; geometry and address lookup", arguments: [RegionBacking.memfd, .anonymous])
    func geometry(backing: RegionBacking) throws {
        let region = try ScanRegion(bytes: 5 * systemPage + 1, name: "geometry", lock: false, backing: backing)
        #expect(region.pageSize == systemPage)
        #expect(region.byteCount == 6 * systemPage)
        #expect(region.pageCount == 6)
        #expect(Int(bitPattern: region.base) % systemPage == 0)
        let start = UInt(bitPattern: region.base)
        #expect(region.pageIndex(ofAddress: start) == 0)
        #expect(region.pageIndex(ofAddress: start + UInt(3 * systemPage + 17)) == 3)
        #expect(region.pageIndex(ofAddress: start + UInt(region.byteCount - 1)) == 5)
        #expect(region.pageIndex(ofAddress: start + UInt(region.byteCount)) == nil)
        #expect(region.pageIndex(ofAddress: start - 1) == nil)
        #expect(region.retiredPages == 0)
    }

    @Test("mlock: locked, or a lockError that says how to fix it; unlocked when not asked")
    func locking() throws {
        let unlocked = try ScanRegion(bytes: 1 << 20, name: "unlocked", lock: false)
        #expect(!unlocked.isLocked && unlocked.lockError == nil && unlocked.lockedBytes == 0)
        let locked = try ScanRegion(bytes: 1 << 20, name: "locked", lock: true)
        if locked.isLocked {
            #expect(locked.lockError == nil && locked.lockedBytes == locked.byteCount)
        } else {
            #expect(locked.lockError?.contains("RLIMIT_MEMLOCK") == true)
            #expect(locked.lockedBytes == 0)
        }
    }

    @Test("placement runs once before first touch with the whole mapping; a throwing placement fails the init")
    func placement() throws {
        final class Seen: @unchecked Sendable { var calls: [(UInt, Int, Int64)] = [] }
        let seen = Seen()
        let region = try ScanRegion(bytes: 8 * systemPage, name: "placed", lock: false) { base, bytes in
            // Resident pages of the mapping at placement time (mincore): none touched yet.
            var vec = [UInt8](repeating: 0, count: bytes / systemPage)
            let rc = mincore(base, bytes, &vec)
            seen.calls.append((UInt(bitPattern: base), bytes, rc == 0 ? Int64(vec.reduce(0) { $0 + Int($1 & 1) }) : -1))
        }
        #expect(seen.calls.count == 1)
        #expect(seen.calls.first?.0 == UInt(bitPattern: region.base))
        #expect(seen.calls.first?.1 == region.byteCount)
        #expect(seen.calls.first?.2 == 0)
        // Replacement pages are placed too.
        try region.replacePage(2)
        #expect(seen.calls.count == 2 && seen.calls.last?.1 == systemPage)

        struct Refused: Error {}
        #expect {
            _ = try ScanRegion(bytes: systemPage, name: "refused", lock: false) { _, _ in throw Refused() }
        } throws: { error in (error as? ScanError)?.code == .mapFailed }
    }

    @Test("replacePage maps a fresh zero page (the old content is gone), counts it, and rejects bad indexes")
    func replace() throws {
        let region = try ScanRegion(bytes: 8 * systemPage, name: "replace", lock: true)
        region.fill(pages: 0..<8, seed: 11, invert: false)
        try region.replacePage(3)
        #expect(region.retiredPages == 1)
        let words = systemPage / 8
        let page3 = (region.base + 3 * systemPage).assumingMemoryBound(to: UInt64.self)
        #expect((0..<words).allSatisfy { page3[$0] == 0 })
        // Exactly the words of page 3 whose pattern is not zero are reported.
        let expectedBad = (0..<words).filter {
            ScanKernel.patternWord(address: UInt(bitPattern: region.base + 3 * systemPage + $0 * 8), seed: 11, invert: false) != 0
        }.count
        let r = region.verify(pages: 0..<8, seed: 11, invert: false, refill: nil)
        #expect(r.corruptedWords == UInt64(expectedBad))
        #expect(r.mismatches.allSatisfy { $0.offset / systemPage == 3 && $0.actual == 0 })
        #expect(r.pagesVerified == 8)
        for bad in [-1, 8, 1000] {
            #expect(throws: ScanError.self) { try region.replacePage(bad) }
        }
    }

    @Test("bit flips: through the alias mapping (memfd) or in place (anonymous, replaced pages)",
          arguments: [RegionBacking.memfd, .anonymous])
    func bitFlipPaths(backing: RegionBacking) throws {
        let region = try ScanRegion(bytes: 4 * systemPage, name: "flip", lock: false, backing: backing)
        region.fill(pages: 0..<4, seed: 3, invert: true)
        try region.injectBitFlip(wordIndex: 10, mask: 1 << 63)
        try region.replacePage(2)
        region.fill(pages: 2..<3, seed: 3, invert: true)
        let wordInReplaced = (2 * systemPage) / 8 + 5
        try region.injectBitFlip(wordIndex: wordInReplaced, mask: 0xF0)
        let r = region.verify(pages: 0..<4, seed: 3, invert: true, refill: nil)
        #expect(r.corruptedWords == 2)
        #expect(r.mismatches.map(\.offset) == [80, wordInReplaced * 8])
        #expect(r.flips0to1 + r.flips1to0 == 5)
    }

    @Test("bad injection input is refused with a clear error")
    func badInjection() throws {
        let region = try ScanRegion(bytes: 2 * systemPage, name: "bad-inject", lock: false)
        let words = region.byteCount / 8
        for (word, mask) in [(-1, UInt64(1)), (words, 1), (0, 0)] {
            #expect(throws: ScanError.self) { try region.injectBitFlip(wordIndex: word, mask: mask) }
        }
        for page in [-1, 2] {
            #expect(throws: ScanError.self) { try region.injectLostBacking(page: page) }
            #expect(throws: ScanError.self) { try region.injectHardwarePoison(page: page) }
        }
        // A page whose backing was taken cannot take a bit flip until a scan retired it.
        try region.injectLostBacking(page: 1)
        #expect {
            try region.injectBitFlip(wordIndex: words - 1, mask: 1)
        } throws: { ($0 as? ScanError)?.code == .injectFailed }
        let r = region.verify(pages: 0..<2, seed: 0, invert: false, refill: nil)
        #expect(r.faults.map(\.pageIndex) == [1])
        try region.injectBitFlip(wordIndex: words - 1, mask: 1)
    }

    @Test("MADV_HWPOISON: refused with the reason on kernels without CONFIG_MEMORY_FAILURE or without privilege")
    func hardwarePoisonAvailability() throws {
        let hasMemoryFailure = access("/proc/sys/vm/memory_failure_recovery", F_OK) == 0
        // Real poison retires a physical frame until reboot: only with an explicit opt-in.
        let optIn = getenv("MCESCAN_TEST_HWPOISON").map { String(cString: $0) == "1" } ?? false
        let region = try ScanRegion(bytes: 2 * systemPage, name: "hwpoison", lock: true)
        region.fill(pages: 0..<2, seed: 1, invert: false)
        if !hasMemoryFailure {
            #expect {
                try region.injectHardwarePoison(page: 0)
            } throws: { error in
                guard let e = error as? ScanError else { return false }
                return (e.code == .unsupported && e.message.contains("CONFIG_MEMORY_FAILURE")) || e.code == .permissionDenied
            }
        } else if geteuid() != 0 {
            #expect { try region.injectHardwarePoison(page: 0) } throws: { ($0 as? ScanError)?.code == .permissionDenied }
        } else if optIn {
            try region.injectHardwarePoison(page: 1)
            let r = region.verify(pages: 0..<2, seed: 1, invert: false, refill: nil)
            #expect(r.faults.count == 1 && r.faults.first?.outcome == .poisoned && r.faults.first?.pageIndex == 1)
            #expect(region.verify(pages: 0..<2, seed: 1, invert: false, refill: nil).faults.isEmpty)
        }
    }

    @Test("hugetlb backing: a region of huge pages, or mapFailed naming the pool when it is empty")
    func hugetlb() throws {
        let huge = 2 << 20
        do {
            let region = try ScanRegion(bytes: huge, name: "huge", lock: false, backing: .hugetlb(pageSize: huge))
            #expect(region.pageSize == huge && region.pageCount == 1)
            region.fill(pages: 0..<1, seed: 2, invert: false)
            try region.injectBitFlip(wordIndex: 12345, mask: 1)
            #expect(region.verify(pages: 0..<1, seed: 2, invert: false, refill: nil).corruptedWords == 1)
        } catch {
            #expect(error.code == .mapFailed)
            #expect(error.message.contains("hugetlb") || error.message.contains("MFD_HUGETLB"))
        }
    }

    @Test("SIGBUS si_code maps to the page outcome",
          arguments: [(Int32(4), PageOutcome.poisoned), (5, .poisoned), (2, .lostBacking), (3, .lostBacking), (1, .lostBacking)])
    func outcomeForCode(code: Int32, outcome: PageOutcome) {
        #expect(PageFault.outcome(forCode: code) == outcome)
        #expect(PageFault(pageIndex: 0, address: 0, siCode: code, addressLSB: 0).outcome == outcome)
    }

    @Test("one classifier: every SIGBUS si_code gets its sigbus_total label and poison/lost-backing class",
          arguments: [(SigbusSiCode.mceerrAR, SigbusCode.mceerrAR, true), (SigbusSiCode.mceerrAO, .mceerrAO, true),
                      (SigbusSiCode.adrerr, .adrerr, false), (SigbusSiCode.objerr, .objerr, false),
                      (Int32(1), .other, false), (Int32(0), .other, false), (Int32(-6), .other, false)])
    func sigbusClassifier(siCode: Int32, code: SigbusCode, poison: Bool) {
        #expect(SigbusCode(siCode: siCode) == code)
        #expect(SigbusCode(siCode: siCode).isPoison == poison)
        #expect(PageFault.outcome(forCode: siCode) == (poison ? .poisoned : .lostBacking))
    }
}
