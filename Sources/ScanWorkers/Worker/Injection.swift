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
    /// Injects `count` faults into the arena at the pages the worker scans next.
    func inject(_ kind: InjectedKind, count: Int, mechanism: InjectMechanism) throws(InjectError) -> [UInt64] {
        guard (1...64).contains(count) else { throw InjectError(.invalidArgument, "count \(count) is out of range (1-64)") }
        return try shared.withLock { s throws(InjectError) -> [UInt64] in
            guard let region = s.region else {
                throw InjectError(.noArena, "node \(node.id) has no arena (type arena disabled, or the worker has not woken yet)")
            }
            var offsets: [UInt64] = []
            let wordsPerPage = region.pageSize / 8
            for i in 0..<count {
                let page = (s.cursorPage + i) % region.pageCount
                do {
                    switch kind {
                    case .bitflip:
                        let word = page * wordsPerPage + Int(mix64(UInt64(i) &+ nonce) % UInt64(wordsPerPage))
                        let bit = Int(mix64(UInt64(word)) % 64)
                        try region.injectBitFlip(wordIndex: word, mask: 1 << UInt64(bit))
                        s.injectedWords.insert(word * 8)
                        offsets.append(UInt64(word * 8))
                    case .poison:
                        // The frame must be read now: after MADV_HWPOISON the pagemap entry is a
                        // hwpoison swap entry, and after truncation there is no frame at all.
                        let phys = pagemap?.physicalAddress(of: UInt(bitPattern: region.base) + UInt(page * region.pageSize))
                        if mechanism == .kernel { try region.injectHardwarePoison(page: page) } else { try region.injectLostBacking(page: page) }
                        s.injectedPages[page] = phys
                        offsets.append(UInt64(page * region.pageSize))
                    }
                } catch {
                    if offsets.isEmpty { throw InjectError(.unsupported, "\(error)") }
                    break
                }
            }
            counters.countInjected(kind, UInt64(offsets.count))
            return offsets
        }
    }
}
