@testable import ScanWorkers
import Testing

@Suite("Coverage: distinct frames verified")
struct CoverageTests {
    /// Frames in runs (as pagemap gives them), scattered across blocks, with unknown (0) entries,
    /// duplicates, and pages of 512 frames that are aligned or straddle a 64 Ki-frame block.
    @Test("mark counts each frame once, whatever the runs, blocks and page sizes", arguments: [UInt64(1), 512])
    func distinctMatchesASet(framesPerPage: UInt64) {
        var rng = SplitMix64(seed: 31 + framesPerPage)
        var tracker = CoverageTracker(window: 3600, now: 0)
        var reference = Set<UInt64>()
        let batches = framesPerPage == 1 ? 200 : 24   // a debug-build Set of every frame is the slow part
        for batch in 0..<batches {
            var frames: [UInt64] = []
            var pfn = rng.next() % (1 << 22) + 1
            if framesPerPage > 1, batch % 3 != 0 { pfn = pfn / framesPerPage * framesPerPage + framesPerPage }
            if batch % 7 == 0 { pfn = (pfn | 0xffff) - framesPerPage / 2 }   // straddles a block boundary
            for _ in 0..<Int(rng.next() % (framesPerPage == 1 ? 300 : 40)) {
                switch rng.next() % 10 {
                case 0: frames.append(0)
                case 1: pfn = rng.next() % (1 << 22) + 1; frames.append(pfn)   // a jump to another block
                default: frames.append(pfn); pfn += framesPerPage
                }
            }
            tracker.mark(frames, framesPerPage: framesPerPage)
            for f in frames where f != 0 { for x in f..<(f + framesPerPage) { reference.insert(x) } }
            #expect(tracker.distinct == UInt64(reference.count), "batch \(batch)")
        }
        // A window that ends starts over.
        tracker.roll(now: 3600)
        #expect(tracker.distinct == 0)
        tracker.mark([5, 5, 0, 6], framesPerPage: 1)
        #expect(tracker.distinct == 2)
    }
}
