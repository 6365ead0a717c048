import CScanKernel

#if canImport(Glibc)
import Glibc
#endif

/// What one verify found, whatever memory it ran over (arena region or sweep chunk).
struct ScanTally {
    struct Word { var offset: UInt64; var expected: UInt64; var actual: UInt64 }
    struct Fault { var pageIndex: Int; var address: UInt; var siCode: Int32 }
    var pages = 0
    var pageBytes = 0
    var words: UInt64 = 0
    var corrupted: UInt64 = 0
    var flips0to1: UInt64 = 0
    var flips1to0: UInt64 = 0
    var mismatches: [Word] = []
    var faults: [Fault] = []

    /// From the C kernel's result structs; `pageOffset` is added to recorded offsets.
    init(pages: Int, pageBytes: Int, result r: mcescan_verify_result, faults f: mcescan_fault_list, base: UInt64 = 0) {
        self.pages = pages
        self.pageBytes = pageBytes
        words = r.words_checked
        corrupted = r.corrupted_words
        flips0to1 = r.flips_0to1
        flips1to0 = r.flips_1to0
        withUnsafeBytes(of: r.mismatches) { raw in
            let m = raw.bindMemory(to: mcescan_mismatch.self)
            for i in 0..<min(Int(r.mismatches_recorded), m.count) {
                mismatches.append(Word(offset: base + m[i].offset, expected: m[i].expected, actual: m[i].actual))
            }
        }
        withUnsafeBytes(of: f.faults) { raw in
            let list = raw.bindMemory(to: mcescan_fault.self)
            for i in 0..<min(Int(f.recorded), list.count) {
                faults.append(Fault(pageIndex: Int(list[i].page_index), address: UInt(list[i].address), siCode: list[i].si_code))
            }
        }
    }

    /// From a region's verify: faulting pages count as scanned (they were read up to the fault).
    init(_ r: ChunkResult, pageBytes: Int) {
        self.pages = r.pagesVerified + r.faults.count
        self.pageBytes = pageBytes
        words = r.wordsChecked
        corrupted = r.corruptedWords
        flips0to1 = r.flips0to1
        flips1to0 = r.flips1to0
        mismatches = r.mismatches.map { Word(offset: UInt64($0.offset), expected: $0.expected, actual: $0.actual) }
        faults = r.faults.map { Fault(pageIndex: $0.pageIndex, address: $0.address, siCode: $0.siCode) }
    }

    init() {}
}

/// Why a sweep chunk could not be taken.
struct SweepError: Error {
    var reason: BackoffReason
    var message: String
}

/// A chunk of the node's free memory held between two wakes: anonymous memory (base pages, or
/// huge pages from the hugetlb pool) bound to the node with `mbind` before first touch, populated
/// with `MADV_POPULATE_WRITE` (which fails with an error instead of raising SIGBUS or invoking the
/// OOM killer on a hugetlb shortage), filled with the pattern, verified at the next visit and
/// released with `munmap`. Registered with the C kernel so a poison notice for it is recorded.
final class SweepChunk {
    let base: UnsafeMutableRawPointer
    let bytes: Int
    let pageSize: Int
    var pageCount: Int { bytes / pageSize }
    let seed: UInt64
    let invert: Bool
    /// Pages reported poisoned out of scan (async notice); skipped at verify.
    var poisonedPages = Set<Int>()

    static let madvPopulateWrite: Int32 = 23   // MADV_POPULATE_WRITE, Linux 5.14
    static let mapHugeShift: Int32 = 26
    static let thpAlignment = 2 << 20

    init(bytes: Int, pageSize: Int, huge: Bool, node: Int, binder: any NUMABinder, seed: UInt64, invert: Bool) throws(SweepError) {
        var flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE
        if huge { flags |= 0x40000 /* MAP_HUGETLB */ | (Int32(pageSize.trailingZeroBitCount) << Self.mapHugeShift) }
        // Base-page chunks are mapped 2 MiB-aligned so transparent huge pages can back them: the
        // same free memory is swept with 1/512 of the page faults (kernel fault cost dominated the
        // sweep's CPU with 4 KiB pages; see BENCHMARKS.md).
        let align = huge ? 0 : Self.thpAlignment
        guard let raw = mmap(nil, bytes + align, PROT_READ | PROT_WRITE, flags, -1, 0), raw != MAP_FAILED else {
            throw SweepError(reason: .unavailable, message: "mmap \(bytes) bytes\(huge ? " of huge pages" : ""): \(String(cString: strerror(errno)))")
        }
        var p = raw
        if align > 0 {
            let start = UInt(bitPattern: raw)
            let aligned = (start + UInt(align - 1)) & ~UInt(align - 1)
            let head = Int(aligned - start)
            if head > 0 { munmap(raw, head) }
            if align - head > 0 { munmap(raw + head + bytes, align - head) }
            p = raw + head
        }
        do {
            try binder.bindMemory(p, bytes: bytes, toNode: node)
        } catch {
            munmap(p, bytes)
            throw SweepError(reason: .unavailable, message: "bind to node \(node): \(error.message)")
        }
        if !huge { madvise(p, bytes, 14 /* MADV_HUGEPAGE */) }
        if madvise(p, bytes, Self.madvPopulateWrite) != 0 {
            let e = errno
            munmap(p, bytes)
            throw SweepError(reason: .unavailable, message: "populate \(bytes) bytes on node \(node): \(String(cString: strerror(e)))")
        }
        base = p
        self.bytes = bytes
        self.pageSize = pageSize
        self.seed = seed
        self.invert = invert
        _ = mcescan_register_region(UInt(bitPattern: p), bytes)
        mcescan_fill(p, bytes, seed, invert ? 1 : 0)
    }

    deinit {
        mcescan_unregister_region(UInt(bitPattern: base))
        munmap(base, bytes)
    }

    /// Pages named by out-of-scan poison notices (BUS_MCEERR_AO) since the last call; they are
    /// skipped at verify (never touched again).
    func takeAsyncPoison() -> [Int] {
        var addresses = [UInt64](repeating: 0, count: 64)
        var pages: [Int] = []
        while true {
            let n = mcescan_take_async_poison_in(UInt(bitPattern: base), bytes, &addresses, addresses.count)
            for a in addresses.prefix(n) {
                if let page = pageIndex(of: UInt(a)), poisonedPages.insert(page).inserted { pages.append(page) }
            }
            if n < addresses.count { break }
        }
        return pages
    }

    /// Whether the address lies in this chunk; its page index.
    func pageIndex(of address: UInt) -> Int? {
        let b = UInt(bitPattern: base)
        guard address >= b, address < b + UInt(bytes) else { return nil }
        return Int((address - b) / UInt(pageSize))
    }

    /// Verifies every page against the pattern it was filled with, surviving SIGBUS; pages
    /// poisoned out of scan are skipped (never touched again).
    func verify() -> ScanTally {
        var total = ScanTally()
        total.pageBytes = pageSize
        var start = 0
        let skip = poisonedPages.sorted() + [pageCount]
        for stop in skip {
            if stop > start {
                var r = mcescan_verify_result()
                var f = mcescan_fault_list()
                let n = mcescan_verify_safe(base + start * pageSize, pageSize, stop - start, seed, invert ? 1 : 0,
                                            0, 0, 0, &r, &f)
                var part = ScanTally(pages: n, pageBytes: pageSize, result: r, faults: f, base: UInt64(start * pageSize))
                for i in part.faults.indices { part.faults[i].pageIndex += start }
                total.merge(part)
            }
            start = stop + 1
        }
        return total
    }
}

extension ScanTally {
    mutating func merge(_ o: ScanTally) {
        pages += o.pages
        words += o.words
        corrupted += o.corrupted
        flips0to1 += o.flips0to1
        flips1to0 += o.flips1to0
        mismatches += o.mismatches
        faults += o.faults
    }
}

/// The free-memory sweep of one node (type bit 1, and bit 2 with huge pages): one chunk held
/// between visits. A visit verifies and releases the held chunk, then, unless the guard says to
/// back off, takes a new chunk and fills it.
final class FreeSweep {
    let type: MemoryType
    let node: Int
    let binder: any NUMABinder
    let memoryGuard: MemoryGuard
    /// Base page size, or the huge page size for hugetlb.
    let pageSize: Int
    private(set) var held: SweepChunk?
    /// The largest chunk taken at once.
    static let maxChunkBytes = 1 << 30
    /// Huge page size of the hugetlb sweep (the 2 MiB pool).
    static let hugePageKB = 2048

    init(type: MemoryType, node: Int, binder: any NUMABinder, memoryGuard: MemoryGuard, basePageSize: Int) {
        self.type = type
        self.node = node
        self.binder = binder
        self.memoryGuard = memoryGuard
        self.pageSize = type == .hugetlb ? Self.hugePageKB * 1024 : basePageSize
    }

    /// Verifies and releases the held chunk (nil when none was held).
    func verifyAndRelease() -> (tally: ScanTally, chunk: SweepChunk)? {
        guard let chunk = held else { return nil }
        held = nil
        return (chunk.verify(), chunk)
    }

    /// How many bytes a new chunk for a budget of `budgetBytes` would take (0: none possible),
    /// and the back-off reason when the guard refuses.
    func plan(budgetBytes: Int) -> (bytes: Int, backoff: BackoffReason?) {
        var bytes = min(budgetBytes, Self.maxChunkBytes) / pageSize * pageSize
        if type == .hugetlb {
            let free = Int(memoryGuard.freeHugePages(node: node, sizeKB: Self.hugePageKB))
            if free == 0 { return (0, .unavailable) }
            bytes = min(bytes, free * pageSize)
            if bytes == 0 { return (0, nil) }   // budget below one huge page
            if let reason = memoryGuard.pressureBackoff() { return (0, reason) }
            return (bytes, nil)
        }
        if bytes == 0 { return (0, nil) }
        if let reason = memoryGuard.check(node: node, bytes: UInt64(bytes)) { return (0, reason) }
        return (bytes, nil)
    }

    /// Takes and fills a new chunk of `bytes`.
    func take(bytes: Int, seed: UInt64, invert: Bool) throws(SweepError) -> SweepChunk {
        let chunk = try SweepChunk(bytes: bytes, pageSize: pageSize, huge: type == .hugetlb, node: node, binder: binder,
                                   seed: seed, invert: invert)
        held = chunk
        return chunk
    }

    /// Drops the held chunk without verifying it (type disabled, engine stopping).
    func release() { held = nil }
}
