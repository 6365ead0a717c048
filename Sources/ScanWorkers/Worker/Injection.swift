import CScanKernel

#if canImport(Glibc)
import Glibc
#endif

/// Why a fault could not be injected.
public typealias InjectError = CodedError<InjectFailure>

/// The kinds of `InjectError`.
public enum InjectFailure: String, Sendable {
    /// The node's arena is not allocated (type `arena` disabled, or the worker has not woken yet).
    case noArena
    /// The region refused (the kernel does not support it, no privilege).
    case unsupported
    /// `count` out of range.
    case invalidArgument
    /// Every page of the arena already holds an injected fault the scan has not found yet.
    case arenaFull
}

/// How `inject` makes a poisoned page.
public enum InjectMechanism: String, Sendable {
    /// A page of the arena's memfd truncated away: a real SIGBUS (BUS_ADRERR), no kernel state changes.
    case synthetic
    /// `MADV_HWPOISON`: retires a real physical page until reboot (CAP_SYS_ADMIN, CONFIG_MEMORY_FAILURE).
    case kernel
}

/// State the control API shares with the worker: the arena (for fault injection) and what was
/// injected (so its events carry kind `injected`).
struct SharedArenaState {
    var region: ScanRegion?
    var cursorPage = 0
    var injectedWords = Set<Int>()   // byte offsets
    /// Injected page faults not yet found, with the page's physical address read before the
    /// injection (after MADV_HWPOISON the pagemap entry no longer holds the frame).
    var injectedPages: [Int: UInt64?] = [:]
}

/// Fault injection, called on the control API thread.
extension ScanWorker {
    /// Injects `count` faults into the arena at the pages the worker scans next, each at a
    /// position no earlier injection still waits at: a word flipped twice would read back right
    /// and be counted as injected but never found, and a flip on a page that is then poisoned is
    /// never read. Pages with a pending poison are skipped, poison skips pages with a pending
    /// flip. Fewer offsets than `count` come back when the arena has no free position left.
    func inject(_ kind: InjectedKind, count: Int, mechanism: InjectMechanism) throws(InjectError) -> [UInt64] {
        guard (1...64).contains(count) else { throw InjectError(.invalidArgument, "count \(count) is out of range (1-64)") }
        return try shared.withLock { s throws(InjectError) -> [UInt64] in
            guard let region = s.region else {
                throw InjectError(.noArena, "node \(node.id) has no arena (type arena disabled, or the worker has not woken yet)")
            }
            var offsets: [UInt64] = []
            var failure: String?
            let flippedPages = Set(s.injectedWords.map { $0 / region.pageSize })
            var k = 0
            while offsets.count < count && k < region.pageCount && failure == nil {
                let page = (s.cursorPage + k) % region.pageCount
                k += 1
                if s.injectedPages[page] != nil { continue }
                do {
                    switch kind {
                    case .bitflip:
                        guard let word = freeWord(page: page, region: region, taken: s.injectedWords, salt: UInt64(offsets.count)) else { continue }
                        let bit = Int(mix64(UInt64(word) &+ nonce) % 64)
                        try region.injectBitFlip(wordIndex: word, mask: 1 << UInt64(bit))
                        s.injectedWords.insert(word * 8)
                        offsets.append(UInt64(word * 8))
                    case .poison:
                        if flippedPages.contains(page) { continue }
                        // The frame must be read now: after MADV_HWPOISON the pagemap entry is a
                        // hwpoison swap entry, and after truncation there is no frame at all.
                        let phys = pagemap?.physicalAddress(of: UInt(bitPattern: region.base) + UInt(page * region.pageSize))
                        if mechanism == .kernel { try region.injectHardwarePoison(page: page) } else { try region.injectLostBacking(page: page) }
                        s.injectedPages[page] = phys
                        offsets.append(UInt64(page * region.pageSize))
                    }
                } catch {
                    failure = "\(error)"
                }
            }
            if offsets.isEmpty {
                if let failure { throw InjectError(.unsupported, failure) }
                throw InjectError(.arenaFull, "every page of node \(node.id)'s arena already holds an injected fault the scan has not found yet; " +
                                  "wait for the next pass (or give the arena more pages)")
            }
            counters.countInjected(kind, UInt64(offsets.count))
            return offsets
        }
    }

    /// A word of `page` that holds no pending injected flip (a few pseudo-random probes, then
    /// the first free one), or nil when every word of the page is taken.
    private func freeWord(page: Int, region: ScanRegion, taken: Set<Int>, salt: UInt64) -> Int? {
        let wordsPerPage = region.pageSize / 8
        let first = page * wordsPerPage
        for probe in 0..<UInt64(4) {
            let word = first + Int(mix64(salt &* 4 &+ probe &+ nonce &+ UInt64(taken.count)) % UInt64(wordsPerPage))
            if !taken.contains(word * 8) { return word }
        }
        return (first..<(first + wordsPerPage)).first { !taken.contains($0 * 8) }
    }
}
