import CScanKernel

#if canImport(Glibc)
import Glibc
#endif

/// The arena pass: making and dropping the pinned arena, verifying a range of its pages and
/// marking their frames in the coverage window.
extension ScanWorker {
    /// Verifies up to `budgetPages` arena pages from the cursor; nil (a back-off counted) when the
    /// arena cannot be allocated. `passDone` when the cursor reached the end of the arena.
    func visitArena(budgetPages: Int) -> (pages: Int, passDone: Bool)? {
        guard let region = ensureArena() else {
            counters.countBackoff(.unavailable)
            return nil
        }
        let n = min(budgetPages, region.pageCount - cursorPage)
        scanArena(region, pages: cursorPage..<(cursorPage + n))
        cursorPage += n
        let done = cursorPage >= region.pageCount
        if done { arenaPass += 1 }
        shared.withLock { $0.cursorPage = cursorPage % max(1, region.pageCount) }
        return (n, done)
    }

    func seed(pass: UInt64) -> (seed: UInt64, invert: Bool) {
        (mix64(nonce &+ pass &* 0x9e37_79b9_7f4a_7c15), pass & 1 == 1)
    }

    func ensureArena() -> ScanRegion? {
        if let arena { return arena }
        let bytes = max(basePageSize, settings.arenaBytes / basePageSize * basePageSize)
        let region: ScanRegion
        do {
            let binder = self.binder
            let id = node.id
            region = try ScanRegion(bytes: bytes, name: "mcescan-arena-node\(id)", lock: true) { base, length in
                try binder.bindMemory(base, bytes: length, toNode: id)
            }
        } catch {
            if arenaFailure != error.message {
                arenaFailure = error.message
                log(.error, "cannot allocate the arena (retried on every wake, logged again only when the error changes)",
                    ["node": "\(node.id)", "bytes": "\(bytes)", "err": "\(error.message)"])
            }
            return nil
        }
        if arenaFailure != nil {
            arenaFailure = nil
            log(.info, "arena allocated after earlier failures", ["node": "\(node.id)", "bytes": "\(bytes)"])
        }
        if !region.isLocked && !loggedLock {
            loggedLock = true
            log(.warning, "arena runs unlocked (mlock refused; raise the memlock limit or grant CAP_IPC_LOCK)",
                ["node": "\(node.id)", "err": region.lockError ?? "unknown"])
        }
        arenaPass = 0
        cursorPage = 0
        let first = seed(pass: 0)
        region.fill(pages: 0..<region.pageCount, seed: first.seed, invert: first.invert)
        arena = region
        shared.withLock { $0.region = region; $0.cursorPage = 0; $0.injectedWords = []; $0.injectedPages = [:] }
        setRegion(.arena, bytes: UInt64(region.byteCount), locked: UInt64(region.lockedBytes))
        checkPlacement(.arena, base: region.base, pages: region.pageCount, pageSize: region.pageSize)
        return region
    }

    func dropArena() {
        guard arena != nil else { return }
        arenaFrames = []
        arenaFramesKey = nil
        shared.withLock { $0.region = nil; $0.injectedWords = []; $0.injectedPages = [:] }
        arena = nil
        setRegion(.arena, bytes: 0, locked: 0)
    }

    /// The arena's frames as they are now, when the cache still matches the mapping: read before a
    /// verify or a retirement, they give the physical address of a page that faults or is poisoned
    /// (after the fault pagemap no longer shows its frame).
    func arenaFramesNow(_ region: ScanRegion) -> [UInt64]? {
        guard let key = arenaFramesKey, key.generation == region.mappingGeneration,
              arenaFrames.count == region.pageCount else { return nil }
        return arenaFrames
    }

    /// Physical address of `address` in page `page` of a region whose frames (one per `pageSize`
    /// page, 0 unknown) were read before; nil when unknown.
    func physicalAddress(frames: [UInt64]?, page: Int, pageSize: Int, address: UInt) -> UInt64? {
        guard let frames, page >= 0, page < frames.count, frames[page] != 0 else { return nil }
        return frames[page] * UInt64(basePageSize) + UInt64(address % UInt(pageSize))
    }

    func scanArena(_ region: ScanRegion, pages: Range<Int>) {
        let current = seed(pass: arenaPass)
        let next = seed(pass: arenaPass + 1)
        let framesBefore = arenaFramesNow(region)
        let r = region.verify(pages: pages, seed: current.seed, invert: current.invert, refill: next)
        let tally = ScanTally(r, pageBytes: region.pageSize)
        // A page that mismatched gets the next pattern written in full, so the next pass checks
        // retention again, not this pass's damage (verify already replaced faulting pages and
        // filled them with the next pattern).
        let faulted = Set(r.faults.map(\.pageIndex))
        for page in Set(r.mismatches.map { $0.offset / region.pageSize }) where page < region.pageCount && !faulted.contains(page) {
            region.fill(pages: page..<(page + 1), seed: next.seed, invert: next.invert)
        }
        account(.arena, tally, base: UInt(bitPattern: region.base), replaced: true) { fault in
            self.physicalAddress(frames: framesBefore, page: fault.pageIndex, pageSize: region.pageSize, address: fault.address)
        }
        if let pagemap, pagemap.isUsable {
            let key = (generation: region.mappingGeneration, pass: arenaPass / Self.arenaFramesRefreshPasses)
            if arenaFramesKey.map({ $0 != key }) ?? true || arenaFrames.count != region.pageCount {
                arenaFrames = pagemap.frames(region.base, count: region.pageCount)
                arenaFramesKey = key
                arenaMarked = (coverage.epoch, 0)
            }
            if arenaMarked.epoch != coverage.epoch { arenaMarked = (coverage.epoch, 0) }
            if pages.lowerBound <= arenaMarked.pages, pages.upperBound > arenaMarked.pages {
                coverage.mark(arenaFrames[arenaMarked.pages..<pages.upperBound])
                arenaMarked.pages = pages.upperBound
            } else if pages.lowerBound > arenaMarked.pages {
                coverage.mark(arenaFrames[pages])
            }
        }
    }
}
