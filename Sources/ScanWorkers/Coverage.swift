/// Distinct physical frames verified in the current coverage window (`--scan.coverage-window`),
/// kept as a sparse bitmap of 64 Ki frames per block (8 KiB each). Used by one worker only.
struct CoverageTracker {
    private var blocks: [UInt64: [UInt64]] = [:]
    private(set) var distinct: UInt64 = 0
    /// Bumped when a window starts over (so callers can tell frames they marked are no longer counted).
    private(set) var epoch: UInt64 = 0
    private var windowStart: Double
    let window: Double

    init(window: Double, now: Double) {
        self.window = window
        self.windowStart = now
    }

    /// Starts a new window when the current one is over.
    mutating func roll(now: Double) {
        if now - windowStart >= window {
            blocks.removeAll(keepingCapacity: false)
            distinct = 0
            epoch &+= 1
            windowStart = now
        }
    }

    /// Marks frames verified (0 = unknown, ignored). Frames come in runs that share a block, so
    /// each run costs one dictionary access, not one per frame.
    mutating func mark<C: Collection>(_ frames: C, framesPerPage: UInt64 = 1) where C.Element == UInt64 {
        var i = frames.startIndex
        while i != frames.endIndex {
            let pfn = frames[i]
            if pfn == 0 { frames.formIndex(after: &i); continue }
            let key = pfn >> 16
            var added: UInt64 = 0
            blocks[key, default: [UInt64](repeating: 0, count: 1024)].withUnsafeMutableBufferPointer { words in
                while i != frames.endIndex {
                    let f0 = frames[i]
                    if f0 == 0 { frames.formIndex(after: &i); continue }
                    // A page whose frames leave this block ends the run (it is done by the next one).
                    guard f0 >> 16 == key, (f0 + framesPerPage - 1) >> 16 == key else { break }
                    for f in f0..<(f0 + framesPerPage) {
                        let bit = f & 0xffff
                        let mask: UInt64 = 1 << (bit & 63)
                        let w = Int(bit >> 6)
                        if words[w] & mask == 0 {
                            words[w] |= mask
                            added += 1
                        }
                    }
                    frames.formIndex(after: &i)
                }
            }
            distinct += added
            // A page spanning two blocks (not 2 MiB-aligned frames): mark it frame by frame.
            if i != frames.endIndex, frames[i] != 0, frames[i] >> 16 == key {
                markSpanning(frames[i], count: framesPerPage)
                frames.formIndex(after: &i)
            }
        }
    }

    private mutating func markSpanning(_ first: UInt64, count: UInt64) {
        for f in first..<(first + count) {
            let bit = f & 0xffff
            let mask: UInt64 = 1 << (bit & 63)
            let w = Int(bit >> 6)
            var added = false
            blocks[f >> 16, default: [UInt64](repeating: 0, count: 1024)].withUnsafeMutableBufferPointer { words in
                added = words[w] & mask == 0
                words[w] |= mask
            }
            if added { distinct += 1 }
        }
    }
}
