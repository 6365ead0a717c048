import CScanKernel

#if canImport(Glibc)
import Glibc
#endif

/// Turning what a verify found into durable events, then into counters.
extension ScanWorker {
    /// Records the events of one verify (fsync'd), then counts it.
    /// `knownAddress` gives the physical address of a faulting page from frames read before it
    /// faulted (nil when unknown); injected faults carry the address looked up at injection.
    func account(_ type: MemoryType, _ tally: ScanTally, base: UInt, replaced: Bool,
                         knownAddress: (ScanTally.Fault) -> UInt64? = { _ in nil }) {
        let now = wallNow()
        var found: [ScanEvent] = []
        var injectedHits = (words: Set<Int>(), pages: [Int: UInt64?]())
        if type == .arena && (!tally.mismatches.isEmpty || !tally.faults.isEmpty) {
            injectedHits = shared.withLock { s in
                var w = Set<Int>(), p = [Int: UInt64?]()
                for m in tally.mismatches where s.injectedWords.remove(Int(m.offset)) != nil { w.insert(Int(m.offset)) }
                for f in tally.faults {
                    if let phys = s.injectedPages.removeValue(forKey: f.pageIndex) { p[f.pageIndex] = phys }
                    // A faulting page is replaced: flips waiting in it will never be read, and
                    // must not label a later real error at the same offset as injected.
                    let page = (f.pageIndex * tally.pageBytes)..<((f.pageIndex + 1) * tally.pageBytes)
                    s.injectedWords = s.injectedWords.filter { !page.contains($0) }
                }
                return (w, p)
            }
        }
        for m in tally.mismatches {
            let injected = injectedHits.words.contains(Int(m.offset))
            found.append(ScanEvent(time: now, node: node.id, memoryType: type, kind: injected ? .injected : .corruption,
                                   offset: m.offset, physAddr: pagemap?.physicalAddress(of: base + UInt(m.offset)),
                                   expected: m.expected, actual: m.actual, bits: (m.expected ^ m.actual).nonzeroBitCount))
        }
        for f in tally.faults {
            let code = SigbusCode(siCode: f.siCode)
            let injected = injectedHits.pages[f.pageIndex]
            let kind: EventKind = injected != nil ? .injected : (code.isPoison ? .poison : .lostBacking)
            // A page found faulting has no frame left in pagemap: injected ones were looked up at
            // injection, the others come from the frames read before the verify.
            found.append(ScanEvent(time: now, node: node.id, memoryType: type, kind: kind,
                                   offset: UInt64(f.pageIndex * tally.pageBytes),
                                   physAddr: injected != nil ? injected! : knownAddress(f)))
        }
        events.append(found)   // durable before it is counted

        let c = counters.type(type)
        c.scannedPages.add(UInt64(tally.pages), ordering: .relaxed)
        c.scannedBytes.add(UInt64(tally.pages * tally.pageBytes), ordering: .relaxed)
        if tally.corrupted > 0 {
            if tally.corrupted > UInt64(tally.mismatches.count) {
                counters.eventsDroppedAtCap.add(tally.corrupted - UInt64(tally.mismatches.count), ordering: .relaxed)
            }
            c.corruptedWords.add(tally.corrupted, ordering: .relaxed)
            c.flips0to1.add(tally.flips0to1, ordering: .relaxed)
            c.flips1to0.add(tally.flips1to0, ordering: .relaxed)
        }
        for f in tally.faults {
            let code = SigbusCode(siCode: f.siCode)
            counters.countSigbus(code)
            if code.isPoison || injectedHits.pages[f.pageIndex] != nil {
                c.poisonedPages.add(1, ordering: .relaxed)
            }
            if replaced { c.replacedPages.add(1, ordering: .relaxed) }
        }
    }

    /// Poison notices that arrived outside a scan (early kill, BUS_MCEERR_AO): retire those pages
    /// now. Arena pages are replaced and refilled with the pattern their next verify expects;
    /// sweep chunk pages are skipped at their verify and released with the chunk.
    func claimAsyncPoison() {
        var found: [ScanEvent] = []
        var counts: [(MemoryType, Bool)] = []
        if let region = arena {
            let current = seed(pass: arenaPass), next = seed(pass: arenaPass + 1)
            let framesBefore = arenaFramesNow(region)
            for fault in region.retireAsyncPoison(seed: current.seed, invert: current.invert) {
                // Pages before the cursor already hold the next pass's pattern.
                if fault.pageIndex < cursorPage {
                    region.fill(pages: fault.pageIndex..<(fault.pageIndex + 1), seed: next.seed, invert: next.invert)
                }
                let injected = shared.withLock { $0.injectedPages.removeValue(forKey: fault.pageIndex) }
                found.append(ScanEvent(time: wallNow(), node: node.id, memoryType: .arena, kind: injected != nil ? .injected : .poison,
                                       offset: UInt64(fault.pageIndex * region.pageSize),
                                       physAddr: injected != nil ? injected! : physicalAddress(frames: framesBefore, page: fault.pageIndex,
                                                                                                pageSize: region.pageSize, address: fault.address)))
                counts.append((.arena, true))
            }
        }
        for (type, sweep) in [(MemoryType.free, freeSweep), (.hugetlb, hugeSweep)] {
            guard let chunk = sweep.held else { continue }
            let held = sweepFrames[type.bit]
            let frames = held?.base == chunk.base ? held?.frames : nil
            for page in chunk.takeAsyncPoison() {
                found.append(ScanEvent(time: wallNow(), node: node.id, memoryType: type, kind: .poison,
                                       offset: UInt64(page * chunk.pageSize),
                                       physAddr: physicalAddress(frames: frames, page: page, pageSize: chunk.pageSize,
                                                                 address: UInt(bitPattern: chunk.base) + UInt(page * chunk.pageSize))))
                counts.append((type, false))
            }
        }
        guard !found.isEmpty else { return }
        events.append(found)   // durable before counted
        for (type, replaced) in counts {
            counters.countSigbus(.mceerrAO)
            counters.type(type).poisonedPages.add(1, ordering: .relaxed)
            if replaced { counters.type(type).replacedPages.add(1, ordering: .relaxed) }
        }
    }
}
