#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CScanKernel
import Testing
@testable import ScanWorkers

/// SplitMix64: a small seeded generator so every random test is reproducible from its seed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

/// The expected counts for a set of flips, computed independently of the kernel from the pattern
/// function: the net XOR mask per word, and which of its bits were 0 or 1 in the pattern.
struct ExpectedFlips {
    var netMask: [Int: UInt64] = [:]   // word index -> XOR of every mask applied to it

    mutating func add(word: Int, mask: UInt64) {
        let m = (netMask[word] ?? 0) ^ mask
        netMask[word] = m == 0 ? nil : m
    }

    func counts(base: UnsafeMutableRawPointer, seed: UInt64, invert: Bool) -> (words: UInt64, up: UInt64, down: UInt64, mismatches: [Mismatch]) {
        var up: UInt64 = 0, down: UInt64 = 0
        var list: [Mismatch] = []
        for (word, mask) in netMask.sorted(by: { $0.key < $1.key }) {
            let expected = ScanKernel.patternWord(address: UInt(bitPattern: base + word * 8), seed: seed, invert: invert)
            up += UInt64((mask & ~expected).nonzeroBitCount)
            down += UInt64((mask & expected).nonzeroBitCount)
            list.append(Mismatch(offset: word * 8, expected: expected, actual: expected ^ mask))
        }
        return (UInt64(netMask.count), up, down, list)
    }
}

/// Compares two C verify results field by field (including the recorded mismatches).
func sameResult(_ a: mcescan_verify_result, _ b: mcescan_verify_result) -> Bool {
    var a = a, b = b
    guard a.words_checked == b.words_checked, a.corrupted_words == b.corrupted_words, a.flips_0to1 == b.flips_0to1,
          a.flips_1to0 == b.flips_1to0, a.mismatches_recorded == b.mismatches_recorded else { return false }
    let n = Int(a.mismatches_recorded)
    return withUnsafeBytes(of: &a.mismatches) { ra in
        withUnsafeBytes(of: &b.mismatches) { rb in
            let la = ra.bindMemory(to: mcescan_mismatch.self), lb = rb.bindMemory(to: mcescan_mismatch.self)
            return (0..<n).allSatisfy { la[$0].offset == lb[$0].offset && la[$0].expected == lb[$0].expected && la[$0].actual == lb[$0].actual }
        }
    }
}

@Suite("Kernel: pattern, variants, verify")
struct KernelTests {
    @Test("the start-up variant is one this CPU supports, and the scalar reference is always there")
    func variantChoice() {
        let supported = ScanKernel.supportedVariants
        #expect(supported.contains("scalar"))
        #expect(supported.first == ScanKernel.variant || ScanKernel.variant == "scalar" || supported.contains(ScanKernel.variant))
        #expect(throws: ScanError.self) { try ScanKernel.force(variant: "no-such-variant") }
        #expect(mcescan_verify_with("no-such-variant", nil, 0, 0, 0, nil) == -1)
    }

    @Test("each variant fills exactly the pattern word at every address, both polarities",
          arguments: ScanKernel.supportedVariants, [false, true])
    func fillWritesPattern(variant: String, invert: Bool) throws {
        let region = try ScanRegion(bytes: 64 << 10, name: "fill-\(variant)", lock: false, backing: .anonymous)
        let seed: UInt64 = 0x1234_5678_9abc_def0 ^ UInt64(variant.utf8.count)
        #expect(mcescan_fill_with(variant, region.base, region.byteCount, seed, invert ? 1 : 0) == 0)
        let words = region.base.assumingMemoryBound(to: UInt64.self)
        var wrong = 0
        for i in 0..<(region.byteCount / 8) {
            let expected = ScanKernel.patternWord(address: UInt(bitPattern: region.base + i * 8), seed: seed, invert: invert)
            if words[i] != expected { wrong += 1 }
        }
        #expect(wrong == 0)
        // The polarities are complements of each other.
        let w0 = ScanKernel.patternWord(address: 0x1000, seed: seed, invert: false)
        #expect(ScanKernel.patternWord(address: 0x1000, seed: seed, invert: true) == ~w0)
    }

    @Test("every supported variant reports exactly what the scalar baseline reports, with and without mismatches",
          arguments: ScanKernel.supportedVariants)
    func variantEquivalence(variant: String) throws {
        // 600 KiB: two whole 4-stream chunks and a shorter run (kernel.c splits it into 4 shorter streams).
        let region = try ScanRegion(bytes: 600 << 10, name: "equiv-\(variant)", lock: false, backing: .anonymous)
        var rng = SplitMix64(seed: 42)
        for round in 0..<24 {
            let seed = rng.next()
            let invert = round % 2 == 1
            region.fill(pages: 0..<region.pageCount, seed: seed, invert: invert)
            // 0 flips in round 0, then up to 40 (beyond MCESCAN_MAX_MISMATCHES), some in the same line.
            let flips = round == 0 ? 0 : Int(rng.next() % 40) + 1
            for _ in 0..<flips {
                let word = Int(rng.next() % UInt64(region.byteCount / 8))
                try region.injectBitFlip(wordIndex: word, mask: rng.next() | 1)
                if rng.next() % 4 == 0, word + 1 < region.byteCount / 8 {
                    try region.injectBitFlip(wordIndex: word + 1, mask: 1 << (rng.next() % 64))
                }
            }
            var reference = mcescan_verify_result()
            var candidate = mcescan_verify_result()
            #expect(mcescan_verify_with("scalar", region.base, region.byteCount, seed, invert ? 1 : 0, &reference) == 0)
            #expect(mcescan_verify_with(variant, region.base, region.byteCount, seed, invert ? 1 : 0, &candidate) == 0)
            #expect(sameResult(reference, candidate), "round \(round): \(variant) differs from scalar")
            // An unaligned-to-128 start and an odd number of lines exercise the loop tails.
            var refTail = mcescan_verify_result()
            var candTail = mcescan_verify_result()
            let tailBytes = region.byteCount - 3 * 64
            #expect(mcescan_verify_with("scalar", region.base + 64, tailBytes, seed, invert ? 1 : 0, &refTail) == 0)
            #expect(mcescan_verify_with(variant, region.base + 64, tailBytes, seed, invert ? 1 : 0, &candTail) == 0)
            #expect(sameResult(refTail, candTail), "round \(round): \(variant) differs from scalar on an odd line count")
            #expect(reference.words_checked == UInt64(region.byteCount / 8))
            #expect((reference.corrupted_words == 0) == (flips == 0))
        }
    }

    @Test("the verify+refill of every variant reports what the scalar baseline reports and leaves the next pattern",
          arguments: ScanKernel.supportedVariants)
    func verifyRefillEquivalence(variant: String) throws {
        let region = try ScanRegion(bytes: 600 << 10, name: "refill-\(variant)", lock: false, backing: .anonymous)
        var rng = SplitMix64(seed: 77)
        for round in 0..<8 {
            let seed = rng.next(), next = rng.next()
            let invert = round % 2 == 0
            region.fill(pages: 0..<region.pageCount, seed: seed, invert: invert)
            for _ in 0..<(round * 5) {
                try region.injectBitFlip(wordIndex: Int(rng.next() % UInt64(region.byteCount / 8)), mask: rng.next() | 1)
            }
            var reference = mcescan_verify_result()
            #expect(mcescan_verify_with("scalar", region.base, region.byteCount, seed, invert ? 1 : 0, &reference) == 0)
            var fused = mcescan_verify_result()
            #expect(mcescan_verify_refill_with(variant, region.base, region.byteCount, seed, invert ? 1 : 0, next, invert ? 0 : 1, &fused) == 0)
            #expect(sameResult(reference, fused), "round \(round)")
            var after = mcescan_verify_result()
            #expect(mcescan_verify_with("scalar", region.base, region.byteCount, next, invert ? 0 : 1, &after) == 0)
            #expect(after.corrupted_words == 0 && after.words_checked == UInt64(region.byteCount / 8))
        }
    }

    @Test("the plain read reference sums the words (same sum in every variant)")
    func readReference() throws {
        let region = try ScanRegion(bytes: 64 << 10, name: "read", lock: false, backing: .anonymous)
        region.fill(pages: 0..<region.pageCount, seed: 9, invert: false)
        let words = region.base.assumingMemoryBound(to: UInt64.self)
        var sum: UInt64 = 0
        for i in 0..<(region.byteCount / 8) { sum &+= words[i] }
        #expect(mcescan_read_reference(region.base, region.byteCount) == sum)
    }
}

@Suite("Kernel: property tests")
struct KernelPropertyTests {
    @Test("random bit flips at random offsets are all found, with exact word, bit and direction counts",
          arguments: [UInt64(1), 2, 3, 4])
    func randomFlipsAreFound(seed rngSeed: UInt64) throws {
        let region = try ScanRegion(bytes: 32 << 10, name: "property", lock: false)
        var rng = SplitMix64(seed: rngSeed)
        let words = region.byteCount / 8
        for trial in 0..<40 {
            let seed = rng.next()
            let invert = trial % 2 == 0
            region.fill(pages: 0..<region.pageCount, seed: seed, invert: invert)
            var flips = ExpectedFlips()
            let count = Int(rng.next() % 24) + 1
            for _ in 0..<count {
                let word = Int(rng.next() % UInt64(words))
                // Single bits, a few bits, or a random word-wide mask.
                let mask: UInt64 = switch rng.next() % 3 {
                case 0: 1 << (rng.next() % 64)
                case 1: (1 << (rng.next() % 64)) | (1 << (rng.next() % 64))
                default: rng.next() | 1
                }
                try region.injectBitFlip(wordIndex: word, mask: mask)
                flips.add(word: word, mask: mask)
            }
            let want = flips.counts(base: region.base, seed: seed, invert: invert)
            let got = region.verify(pages: 0..<region.pageCount, seed: seed, invert: invert, refill: nil)
            #expect(got.corruptedWords == want.words, "trial \(trial)")
            #expect(got.flips0to1 == want.up, "trial \(trial)")
            #expect(got.flips1to0 == want.down, "trial \(trial)")
            #expect(got.wordsChecked == UInt64(words))
            #expect(got.pagesVerified == region.pageCount)
            #expect(got.faults.isEmpty)
            #expect(got.mismatches == Array(want.mismatches.prefix(ScanRegion.maxMismatchesPerChunk)), "trial \(trial)")
            // Refill in the same sweep: the next pass over the rewritten region is clean.
            let next = (seed: rng.next(), invert: !invert)
            let again = region.verify(pages: 0..<region.pageCount, seed: seed, invert: invert, refill: next)
            #expect(again.corruptedWords == want.words)
            let clean = region.verify(pages: 0..<region.pageCount, seed: next.seed, invert: next.invert, refill: nil)
            #expect(clean.corruptedWords == 0 && clean.flips0to1 == 0 && clean.flips1to0 == 0 && clean.mismatches.isEmpty)
        }
    }

    @Test("a clean region over thousands of passes (verify + refill, alternating polarity) reports zero errors")
    func cleanRegionStaysClean() throws {
        let region = try ScanRegion(bytes: 16 << 10, name: "clean", lock: true)
        var rng = SplitMix64(seed: 7)
        var seed = rng.next()
        var invert = false
        region.fill(pages: 0..<region.pageCount, seed: seed, invert: invert)
        var total = ChunkResult()
        let passes = 2000
        for _ in 0..<passes {
            let next = (seed: rng.next(), invert: !invert)
            let r = region.verify(pages: 0..<region.pageCount, seed: seed, invert: invert, refill: next)
            total.pagesVerified += r.pagesVerified
            total.wordsChecked += r.wordsChecked
            total.corruptedWords += r.corruptedWords
            total.flips0to1 += r.flips0to1
            total.flips1to0 += r.flips1to0
            total.faults += r.faults
            (seed, invert) = next
        }
        #expect(total.corruptedWords == 0 && total.flips0to1 == 0 && total.flips1to0 == 0)
        #expect(total.faults.isEmpty)
        #expect(total.pagesVerified == passes * region.pageCount)
        #expect(total.wordsChecked == UInt64(passes * region.byteCount / 8))
    }

    @Test("a flipped word is attributed to the right offset in a sub-range verify")
    func subRangeOffsets() throws {
        let region = try ScanRegion(bytes: 16 * 4096, name: "subrange", lock: false)
        region.fill(pages: 0..<region.pageCount, seed: 5, invert: true)
        let word = (9 * region.pageSize + 200) / 8
        try region.injectBitFlip(wordIndex: word, mask: 0b101)
        let outside = region.verify(pages: 0..<9, seed: 5, invert: true, refill: nil)
        #expect(outside.corruptedWords == 0 && outside.pagesVerified == 9)
        let inside = region.verify(pages: 9..<12, seed: 5, invert: true, refill: nil)
        #expect(inside.corruptedWords == 1)
        #expect(inside.flips0to1 + inside.flips1to0 == 2)
        #expect(inside.mismatches.map(\.offset) == [word * 8])
    }
}
