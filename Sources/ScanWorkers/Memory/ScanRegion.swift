#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CScanKernel

/// What memory backs a `ScanRegion`.
public enum RegionBacking: Sendable, Equatable {
    /// A memfd mapped `MAP_SHARED`: a second ("alias") mapping writes bit flips the scanner then
    /// reads, and truncation produces real SIGBUS. The arena's default.
    case memfd
    /// Private anonymous memory (the free sweep: taken and released with munmap). Bit flips are
    /// written in place.
    case anonymous
    /// A memfd with `MFD_HUGETLB` of the given huge page size (bytes, a power of two), from the
    /// hugetlb pool; each huge page is one scan page.
    case hugetlb(pageSize: Int)
}

/// Memory the scanner owns: a page-aligned mapping (by default memfd-backed `MAP_SHARED`, so a second
/// "alias" mapping can write bit flips and truncation can produce real SIGBUS), registered with the
/// C kernel so out-of-scan poison notices for it are recorded instead of killing the process.
/// The worker scans it; the control API thread injects faults into the arena (`ScanWorker.inject`)
/// under the worker's shared-state lock, which the worker takes to publish its cursor, to match
/// found faults and to drop the arena, but not while it scans; tests call it directly. `fill`
/// returns the pages that raised SIGBUS while filled (already replaced). Unmapped on deinit.
public final class ScanRegion: @unchecked Sendable {
    /// Page state (one byte per page).
    enum State: UInt8 {
        case backed = 0      // the original backing (memfd page, or the first anonymous page)
        case replaced = 1    // a fresh anonymous page mapped over a retired one
        case lost = 2        // injected lost backing: the next read raises SIGBUS
        case poisoned = 3    // injected MADV_HWPOISON: the next read raises SIGBUS
        case dead = 4        // retired and could not be replaced: never read again
    }

    /// The most mismatches one `verify` call returns individually (all are counted).
    public static let maxMismatchesPerChunk = Int(MCESCAN_MAX_MISMATCHES)

    /// First byte of the mapping (page-aligned).
    public let base: UnsafeMutableRawPointer
    /// Size of the mapping (a multiple of `pageSize`).
    public let byteCount: Int
    /// Scan page size: the system page size, or the huge page size for `.hugetlb`.
    public let pageSize: Int
    /// `byteCount / pageSize`.
    public var pageCount: Int { byteCount / pageSize }
    /// What backs the memory.
    public let backing: RegionBacking
    /// The name given to the memfd (visible in /proc/self/maps as `/memfd:NAME`).
    public let name: String
    /// Whether mlock succeeded; false when it was not asked for or was refused (RLIMIT_MEMLOCK).
    public private(set) var isLocked: Bool = false
    /// Why mlock failed, when it was asked for and refused.
    public private(set) var lockError: String?
    /// Pages retired so far (each fault or async notice retires its page; a page can be retired again).
    public private(set) var retiredPages: Int = 0
    /// Bumped whenever a page gets a different mapping (replacement, injected lost backing or
    /// poison), so a cache of the region's physical frames knows when to re-read them.
    public internal(set) var mappingGeneration: UInt64 = 0
    /// The last failure while replacing a page (placement or mlock of the fresh page), if any.
    public private(set) var lastReplacementError: String?

    let fd: Int32
    var alias: UnsafeMutableRawPointer?
    var states: [UInt8]
    private let placement: ((UnsafeMutableRawPointer, Int) throws -> Void)?

    /// Maps `bytes` (rounded up to whole pages) of scanner memory.
    /// - `placement` is called after mmap and BEFORE the first touch (e.g. an mbind to a node); it is
    ///   called again for each replacement page.
    /// - `lock`: mlock the region (populates it); refusal is not an error: see `isLocked`/`lockError`.
    /// Throws `.invalidArgument` for a size of 0 or less or a bad huge page size, `.mapFailed` when
    /// memfd_create/ftruncate/mmap fail (for hugetlb: usually an empty pool) or placement throws.
    public init(bytes: Int, name: String, lock: Bool, backing: RegionBacking = .memfd,
                placement: ((UnsafeMutableRawPointer, Int) throws -> Void)? = nil) throws(ScanError) {
        let (base, size, page, fd) = try Self.map(bytes: bytes, name: name, backing: backing)
        if let placement {
            do { try placement(base, size) } catch {
                munmap(base, size)
                if fd >= 0 { close(fd) }
                throw ScanError(.mapFailed, "placement of \(name) (\(size) bytes): \(error)")
            }
        }
        self.base = base
        self.byteCount = size
        self.pageSize = page
        self.backing = backing
        self.name = name
        self.fd = fd
        self.placement = placement
        self.states = [UInt8](repeating: State.backed.rawValue, count: size / page)
        if lock {
            if mlock(base, size) == 0 {
                isLocked = true
            } else {
                let e = errno
                lockError = "mlock \(size) bytes: \(String(cString: strerror(e))) (errno \(e)); "
                    + "raise RLIMIT_MEMLOCK (LimitMEMLOCK=) or grant CAP_IPC_LOCK; scanning continues unlocked"
            }
        }
        // Out-of-scan poison notices can arrive on any thread from now on: install the process-wide
        // handler (once) before registering. Best effort: a full table only means notices for this
        // region are not recorded.
        _ = mcescan_prepare_thread()
        _ = mcescan_register_region(UInt(bitPattern: base), size)
    }

    /// The mapping of `init`: `bytes` rounded up to whole pages of the backing's page size.
    private static func map(bytes: Int, name: String, backing: RegionBacking) throws(ScanError)
        -> (base: UnsafeMutableRawPointer, size: Int, page: Int, fd: Int32) {
        let systemPage = Int(sysconf(Int32(_SC_PAGESIZE)))
        var page = systemPage
        var hugeLog2: UInt32 = 0
        if case .hugetlb(let size) = backing {
            guard size >= systemPage, size.nonzeroBitCount == 1 else {
                throw ScanError(.invalidArgument, "hugetlb page size \(size) is not a power of two >= \(systemPage)")
            }
            page = size
            hugeLog2 = UInt32(size.trailingZeroBitCount)
        }
        guard bytes > 0 else { throw ScanError(.invalidArgument, "region size must be > 0 bytes (got \(bytes))") }
        let (rounded, overflow) = bytes.addingReportingOverflow(page - 1)
        guard !overflow else { throw ScanError(.invalidArgument, "region size \(bytes) is too large") }
        let size = rounded / page * page

        var fd: Int32 = -1
        let mapped: UnsafeMutableRawPointer?
        switch backing {
        case .memfd, .hugetlb:
            fd = mcescan_memfd(name, hugeLog2)
            if fd < 0 {
                throw ScanError(.mapFailed, "memfd_create(\(name)\(hugeLog2 > 0 ? ", MFD_HUGETLB \(page) B" : ""))", errno: errno)
            }
            if ftruncate(fd, off_t(size)) != 0 {
                let e = errno
                close(fd)
                throw ScanError(.mapFailed, "ftruncate memfd \(name) to \(size) bytes", errno: e)
            }
            mapped = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
        case .anonymous:
            mapped = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        }
        guard let base = mapped, base != MAP_FAILED else {
            let e = errno
            if fd >= 0 { close(fd) }
            let hint = hugeLog2 > 0 ? " (is the hugetlb pool of \(page)-byte pages large enough?)" : ""
            throw ScanError(.mapFailed, "mmap \(size) bytes for \(name)\(hint)", errno: e)
        }
        return (base, size, page, fd)
    }

    deinit {
        mcescan_unregister_region(UInt(bitPattern: base))
        if let alias { munmap(alias, byteCount) }
        munmap(base, byteCount)
        if fd >= 0 { close(fd) }
    }

    /// Bytes of this region currently locked in RAM (0 when unlocked).
    public var lockedBytes: Int { isLocked ? byteCount : 0 }

    /// The page holding a virtual address, or nil when the address is outside the region.
    public func pageIndex(ofAddress address: UInt) -> Int? {
        let start = UInt(bitPattern: base)
        guard address >= start, address - start < UInt(byteCount) else { return nil }
        return Int((address - start) / UInt(pageSize))
    }

    /// Whether a page has been given up for good (retired and not replaceable): scans skip it.
    public func isRetired(page: Int) -> Bool { states[page] == State.dead.rawValue }

    // MARK: - Fill and verify

    /// Writes the pattern (`seed`, polarity `invert`) over `pages` with non-temporal stores.
    /// Fault-safe: a page that raises SIGBUS is retired, replaced with a fresh page holding the
    /// pattern, and returned (so the caller can count it).
    @discardableResult
    public func fill(pages: Range<Int>, seed: UInt64, invert: Bool) -> [PageFault] {
        checkRange(pages)
        var found: [PageFault] = []
        forEachLiveRun(in: pages) { run in
            var start = run.lowerBound
            while start < run.upperBound {
                var faults = mcescan_fault_list()
                mcescan_fill_safe(address(ofPage: start), pageSize, run.upperBound - start, seed, invert ? 1 : 0, &faults)
                let recorded = recordedFaults(&faults, firstPage: start)
                for fault in recorded {
                    found.append(fault)
                    retire(fault.pageIndex, seed: seed, invert: invert)
                }
                // Fill is idempotent: when the fault list overflowed, fill again after the last recorded one.
                if faults.count > faults.recorded, let last = recorded.last {
                    start = last.pageIndex + 1
                } else {
                    break
                }
            }
        }
        return found
    }

    /// Verifies `pages` against the pattern (`seed`, `invert`), surviving SIGBUS. With `refill`, each
    /// chunk of about 256 KiB is rewritten with the next pattern (non-temporal stores) right after it
    /// verified (mismatching lines included: the next pass tests retention again, not this pass's damage). A page that faults is
    /// reported once in `faults`, retired, and replaced by a fresh page holding the next pattern (with
    /// `refill`) or the same one (without), so the following pass finds it clean.
    public func verify(pages: Range<Int>, seed: UInt64, invert: Bool, refill: (seed: UInt64, invert: Bool)?) -> ChunkResult {
        checkRange(pages)
        var result = ChunkResult()
        var counts = mcescan_verify_result()
        let after = refill ?? (seed: seed, invert: invert)
        result.pagesSkipped = forEachLiveRun(in: pages) { run in
            var faults = mcescan_fault_list()
            let verified = mcescan_verify_safe(address(ofPage: run.lowerBound), pageSize, run.count, seed, invert ? 1 : 0,
                                               refill == nil ? 0 : 1, after.seed, after.invert ? 1 : 0, &counts, &faults)
            result.pagesVerified += verified
            var found = recordedFaults(&faults, firstPage: run.lowerBound)
            if faults.count > faults.recorded, let last = found.last {
                found += locateFaults(in: (last.pageIndex + 1)..<run.upperBound, expected: Int(faults.count - faults.recorded))
            }
            for fault in found {
                result.faults.append(fault)
                retire(fault.pageIndex, seed: after.seed, invert: after.invert)
            }
            // Mismatch offsets are relative to the run's first page: make them relative to the region.
            let runOffset = run.lowerBound * pageSize
            withUnsafeBytes(of: &counts.mismatches) { raw in
                let list = raw.bindMemory(to: mcescan_mismatch.self)
                for i in 0..<Int(counts.mismatches_recorded) where result.mismatches.count < Self.maxMismatchesPerChunk {
                    result.mismatches.append(Mismatch(offset: runOffset + Int(list[i].offset),
                                                      expected: list[i].expected, actual: list[i].actual))
                }
            }
            result.wordsChecked += counts.words_checked
            result.corruptedWords += counts.corrupted_words
            result.flips0to1 += counts.flips_0to1
            result.flips1to0 += counts.flips_1to0
            counts = mcescan_verify_result()
        }
        return result
    }

    /// Out-of-scan poison notices (early-kill `BUS_MCEERR_AO`) recorded by the C handler for this
    /// region: each page named is retired now, without being read, and replaced with a fresh page
    /// holding (`seed`, `invert`) — the pattern the next verify of that page expects. Call once per wake.
    public func retireAsyncPoison(seed: UInt64, invert: Bool) -> [PageFault] {
        var addresses = [UInt64](repeating: 0, count: 64)
        var found: [PageFault] = []
        var seen = Set<Int>()
        while true {
            let n = mcescan_take_async_poison_in(UInt(bitPattern: base), byteCount, &addresses, addresses.count)
            for a in addresses.prefix(n) {
                guard let page = pageIndex(ofAddress: UInt(a)), seen.insert(page).inserted else { continue }
                found.append(PageFault(pageIndex: page, address: UInt(a), siCode: SigbusSiCode.mceerrAO, addressLSB: 0))
                retire(page, seed: seed, invert: invert)
            }
            if n < addresses.count { break }
        }
        return found
    }

    /// Maps a fresh anonymous page over page `index` (MAP_FIXED), so the old frame is never touched
    /// again; applies `placement` and mlock (when the region is locked) to it and releases the old
    /// memfd page. The new page holds zeros: fill it before verifying. Throws `.invalidArgument` for
    /// an index outside the region, `.mapFailed` when mmap fails (the page is then given up: skipped).
    public func replacePage(_ index: Int) throws(ScanError) {
        guard index >= 0, index < pageCount else {
            throw ScanError(.invalidArgument, "page \(index) is outside \(name) (0..<\(pageCount))")
        }
        let addr = address(ofPage: index)
        let old = State(rawValue: states[index]) ?? .backed
        mappingGeneration &+= 1
        let fresh = mmap(addr, pageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0)
        guard let fresh, fresh != MAP_FAILED else {
            let e = errno
            states[index] = State.dead.rawValue
            retiredPages += 1
            throw ScanError(.mapFailed, "replace page \(index) of \(name)", errno: e)
        }
        states[index] = State.replaced.rawValue
        retiredPages += 1
        if fd >= 0, old != .replaced {
            // The memfd page behind the retired one is no longer mapped by the scanner: release it.
            _ = mcescan_punch_hole(fd, UInt64(index * pageSize), UInt64(pageSize))
        }
        if let placement {
            do { try placement(fresh, pageSize) } catch { lastReplacementError = "placement of page \(index): \(error)" }
        }
        if isLocked, mlock(fresh, pageSize) != 0 {
            lastReplacementError = "mlock of page \(index): \(String(cString: strerror(errno)))"
        }
    }

    // MARK: - Internals

    func address(ofPage page: Int) -> UnsafeMutableRawPointer { base + page * pageSize }

    private func checkRange(_ pages: Range<Int>) {
        precondition(pages.lowerBound >= 0 && pages.upperBound <= pageCount,
                     "pages \(pages) outside \(name) (0..<\(pageCount))")
    }

    /// Calls `body` for each maximal run of pages in `pages` that are not dead; returns the dead count.
    @discardableResult
    private func forEachLiveRun(in pages: Range<Int>, _ body: (Range<Int>) -> Void) -> Int {
        var skipped = 0
        var start = pages.lowerBound
        var i = pages.lowerBound
        while i < pages.upperBound {
            if states[i] == State.dead.rawValue {
                if start < i { body(start..<i) }
                skipped += 1
                start = i + 1
            }
            i += 1
        }
        if start < pages.upperBound { body(start..<pages.upperBound) }
        return skipped
    }

    private func recordedFaults(_ list: inout mcescan_fault_list, firstPage: Int) -> [PageFault] {
        let count = Int(list.recorded)
        return withUnsafeBytes(of: &list.faults) { raw in
            let faults = raw.bindMemory(to: mcescan_fault.self)
            return (0..<count).map { i in
                PageFault(pageIndex: firstPage + Int(faults[i].page_index), address: UInt(faults[i].address),
                          siCode: faults[i].si_code, addressLSB: faults[i].addr_lsb)
            }
        }
    }

    /// After a fault list overflowed: finds the remaining faulting pages of `pages` with read-only
    /// probes whose counts are thrown away (those pages were already verified once).
    private func locateFaults(in pages: Range<Int>, expected: Int) -> [PageFault] {
        var found: [PageFault] = []
        var start = pages.lowerBound
        while start < pages.upperBound, found.count < expected {
            var scratch = mcescan_verify_result()
            var faults = mcescan_fault_list()
            mcescan_verify_safe(address(ofPage: start), pageSize, pages.upperBound - start, 0, 0, 0, 0, 0, &scratch, &faults)
            let more = recordedFaults(&faults, firstPage: start)
            found += more
            guard faults.count > faults.recorded, let last = more.last else { break }
            start = last.pageIndex + 1
        }
        return found
    }

    /// Replaces a faulted page and fills the fresh one; a page that cannot be replaced becomes dead.
    private func retire(_ page: Int, seed: UInt64, invert: Bool) {
        do {
            try replacePage(page)
            mcescan_fill(address(ofPage: page), pageSize, seed, invert ? 1 : 0)
        } catch {
            lastReplacementError = error.message
        }
    }
}
