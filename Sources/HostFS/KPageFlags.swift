#if canImport(Glibc)
import Glibc
#endif

// What the hwpoison census reads: `/proc/kpageflags` entries (parsed from bytes, read in
// ranges through `KPageFlagsFile`) and the memory-block layout of `/sys/devices/system/memory`.

/// Bits of one `/proc/kpageflags` entry (`include/uapi/linux/kernel-page-flags.h`).
public enum KPageFlag: Int, Sendable, CaseIterable {
    case locked = 0, error, referenced, uptodate, dirty, lru, active, slab, writeback, reclaim, buddy
    case mmap, anon, swapcache, swapbacked, compoundHead, compoundTail, huge, unevictable, hwpoison, nopage
    case ksm, thp, offline, zeroPage, idle, pgtable

    /// The entry's bit for this flag.
    @inline(__always) public var mask: UInt64 { 1 << UInt64(rawValue) }
}

/// What a poisoned page frame was when the census saw it, derived from its other KPF bits.
/// The order of the cases is the order of the `page_type` label values in the exposition.
public enum HwpoisonPageType: Int, Sendable, CaseIterable {
    case buddy, hugetlb, thp, slab, anon, file, pgtable, offline, other

    /// The `page_type` label value.
    public var label: String {
        switch self {
        case .buddy: "buddy"
        case .hugetlb: "hugetlb"
        case .thp: "thp"
        case .slab: "slab"
        case .anon: "anon"
        case .file: "file"
        case .pgtable: "pgtable"
        case .offline: "offline"
        case .other: "other"
        }
    }

    private static let fileMask = KPageFlag.lru.mask | KPageFlag.mmap.mask | KPageFlag.uptodate.mask
        | KPageFlag.dirty.mask | KPageFlag.writeback.mask | KPageFlag.swapbacked.mask | KPageFlag.swapcache.mask

    /// Classifies a page by its flags. First match wins: HUGE → hugetlb, THP → thp, SLAB → slab,
    /// PGTABLE → pgtable, OFFLINE → offline, BUDDY → buddy, ANON → anon, any of LRU, MMAP,
    /// UPTODATE, DIRTY, WRITEBACK, SWAPBACKED, SWAPCACHE → file (page cache, shmem), else other.
    /// The HWPOISON bit itself is not looked at.
    public static func classify(_ flags: UInt64) -> HwpoisonPageType {
        if flags & KPageFlag.huge.mask != 0 { return .hugetlb }
        if flags & KPageFlag.thp.mask != 0 { return .thp }
        if flags & KPageFlag.slab.mask != 0 { return .slab }
        if flags & KPageFlag.pgtable.mask != 0 { return .pgtable }
        if flags & KPageFlag.offline.mask != 0 { return .offline }
        if flags & KPageFlag.buddy.mask != 0 { return .buddy }
        if flags & KPageFlag.anon.mask != 0 { return .anon }
        if flags & fileMask != 0 { return .file }
        return .other
    }
}

/// Poisoned page frames by page type, plus how many frames were examined.
public struct HwpoisonCounts: Sendable, Equatable {
    /// Indexed by `HwpoisonPageType.rawValue`.
    public private(set) var pages: [UInt64] = Array(repeating: 0, count: HwpoisonPageType.allCases.count)
    /// Page frames examined (poisoned or not).
    public var examined: UInt64 = 0

    /// An empty census (nothing examined).
    public init() {}

    /// Poisoned frames of one page type.
    public subscript(type: HwpoisonPageType) -> UInt64 {
        get { pages[type.rawValue] }
        set { pages[type.rawValue] = newValue }
    }

    /// All poisoned frames.
    public var poisoned: UInt64 { pages.reduce(0, +) }

    /// Adds the poisoned frames among `entries` (one native-endian u64 per PFN). Only entries with
    /// HWPOISON set are classified, so a clean range costs one AND and compare per entry.
    public mutating func add(_ entries: UnsafeBufferPointer<UInt64>) {
        let poison = KPageFlag.hwpoison.mask
        examined += UInt64(entries.count)
        var any: UInt64 = 0
        for e in entries { any |= e }
        guard any & poison != 0 else { return }
        for e in entries where e & poison != 0 {
            pages[HwpoisonPageType.classify(e).rawValue] += 1
        }
    }

    /// Pure function of bytes: the census of a `/proc/kpageflags` excerpt. Throws when the length
    /// is not a multiple of 8 (the kernel only returns whole entries).
    public static func parse(_ bytes: [UInt8]) throws(HostFSError) -> HwpoisonCounts {
        guard bytes.count % 8 == 0 else {
            throw HostFSError(.malformed, path: "kpageflags", "\(bytes.count) bytes is not a whole number of 8-byte entries")
        }
        var counts = HwpoisonCounts()
        var entries = [UInt64](repeating: 0, count: bytes.count / 8)
        entries.withUnsafeMutableBytes { dst in
            bytes.withUnsafeBytes { src in dst.copyMemory(from: src) }
        }
        entries.withUnsafeBufferPointer { counts.add($0) }
        return counts
    }
}

/// One memory block of `/sys/devices/system/memory/memoryN` and the node it belongs to.
public struct MemoryBlock: Sendable, Equatable {
    /// N of `memoryN`: the block's start address divided by the block size.
    public var index: UInt64
    /// M of the `nodeM` link.
    public var node: Int
    public init(index: UInt64, node: Int) {
        self.index = index
        self.node = node
    }
}

/// The memory-block layout: which page frames belong to which node.
public struct MemoryBlockLayout: Sendable, Equatable {
    /// `block_size_bytes`, in bytes.
    public var blockSizeBytes: UInt64
    /// Sorted by index.
    public var blocks: [MemoryBlock]

    /// A layout from parsed values; blocks are sorted by index.
    public init(blockSizeBytes: UInt64, blocks: [MemoryBlock]) {
        self.blockSizeBytes = blockSizeBytes
        self.blocks = blocks.sorted { $0.index < $1.index }
    }

    /// Parses `block_size_bytes`: hexadecimal without `0x` as the kernel writes it (`8000000`);
    /// a `0x` prefix is accepted too. Zero, empty or non-hex content throws.
    public static func parseBlockSize(_ bytes: [UInt8]) throws(HostFSError) -> UInt64 {
        var text = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: " \t\n")
        if text.hasPrefix("0x") || text.hasPrefix("0X") { text.removeFirst(2) }
        guard !text.isEmpty, let v = UInt64(text, radix: 16), v > 0 else {
            throw HostFSError(.malformed, path: "devices/system/memory/block_size_bytes",
                              "expected a non-zero hexadecimal size, read \"\(String(decoding: bytes.prefix(32), as: UTF8.self))\"")
        }
        return v
    }

    /// N of a `memoryN` directory name, nil for other names (`block_size_bytes`, `power`, ...).
    public static func blockIndex(_ name: String) -> UInt64? {
        guard name.hasPrefix("memory") else { return nil }
        let digits = name.dropFirst(6)
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return UInt64(digits)
    }

    /// N of a `nodeN` name, nil for other names.
    public static func nodeIndex(_ name: String) -> Int? {
        guard name.hasPrefix("node") else { return nil }
        let digits = name.dropFirst(4)
        guard !digits.isEmpty, digits.count <= 6, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int(digits)
    }

    /// Page-frame ranges per node, adjacent blocks merged, sorted by node then PFN.
    /// Throws when the block size is not a whole number of pages.
    public func pfnRanges(pageSize: UInt64) throws(HostFSError) -> [(node: Int, ranges: [Range<UInt64>])] {
        guard pageSize > 0, blockSizeBytes % pageSize == 0 else {
            throw HostFSError(.malformed, path: "devices/system/memory/block_size_bytes",
                              "block size \(blockSizeBytes) is not a multiple of the page size \(pageSize)")
        }
        let pagesPerBlock = blockSizeBytes / pageSize
        var byNode: [Int: [Range<UInt64>]] = [:]
        for block in blocks {
            let (start, overflow) = block.index.multipliedReportingOverflow(by: pagesPerBlock)
            // Byte offsets into kpageflags (8 per PFN) must fit off_t.
            guard !overflow, start <= UInt64(Int64.max) / 8 - pagesPerBlock else {
                throw HostFSError(.malformed, path: "devices/system/memory/memory\(block.index)", "block index out of range")
            }
            let range = start..<(start + pagesPerBlock)
            if var list = byNode[block.node], let last = list.last, last.upperBound == range.lowerBound {
                list[list.count - 1] = last.lowerBound..<range.upperBound
                byNode[block.node] = list
            } else {
                byNode[block.node, default: []].append(range)
            }
        }
        return byNode.keys.sorted().map { (node: $0, ranges: byNode[$0]!) }
    }

    /// Reads the layout under `sysfs`: `devices/system/memory/block_size_bytes` and each
    /// `memoryN/nodeM` link, plus `devices/system/node/nodeM/memoryN` links. Returns nil when the
    /// kernel offers no memory blocks (no CONFIG_MEMORY_HOTPLUG). Blocks linked to no node are
    /// skipped, or given node 0 when the kernel has no `devices/system/node` (no CONFIG_NUMA).
    /// A block linked to two nodes is malformed.
    public static func read(sysfs: SysFS) throws(HostFSError) -> MemoryBlockLayout? {
        let memoryDir = "devices/system/memory"
        guard let names = try sysfs.listIfPresent(memoryDir) else { return nil }
        let blockSize = try parseBlockSize(sysfs.readBytes(memoryDir + "/block_size_bytes", limit: 64))
        var nodeOf: [UInt64: Int] = [:]
        func assign(_ index: UInt64, _ node: Int) throws(HostFSError) {
            if let other = nodeOf[index], other != node {
                throw HostFSError(.malformed, path: sysfs.path("\(memoryDir)/memory\(index)"),
                                  "block linked to node\(other) and node\(node)")
            }
            nodeOf[index] = node
        }
        var indices: [UInt64] = []
        for name in names {
            guard let index = blockIndex(name) else { continue }
            indices.append(index)
            for entry in try sysfs.list("\(memoryDir)/\(name)") {
                if let node = nodeIndex(entry) { try assign(index, node) }
            }
        }
        let nodeNames = try sysfs.listIfPresent("devices/system/node")
        for nodeName in nodeNames ?? [] {
            guard let node = nodeIndex(nodeName) else { continue }
            for entry in try sysfs.list("devices/system/node/\(nodeName)") {
                if let index = blockIndex(entry) { try assign(index, node) }
            }
        }
        var blocks: [MemoryBlock] = []
        for index in indices {
            if let node = nodeOf[index] {
                blocks.append(MemoryBlock(index: index, node: node))
            } else if nodeNames == nil {
                blocks.append(MemoryBlock(index: index, node: 0))
            }
        }
        return MemoryBlockLayout(blockSizeBytes: blockSize, blocks: blocks)
    }
}

/// An open `kpageflags` under procfs: one native-endian u64 of KPF bits per page frame, read
/// in ranges with `pread` so a census never holds more than one chunk.
public final class KPageFlagsFile {
    /// The file's path (for error messages).
    public let path: String
    private let fd: Int32

    /// Opens `kpageflags` under `procfs`; nil when the kernel offers none. Other failures
    /// (permission: the file is 0400 root) throw.
    public init?(procfs: ProcFS) throws(HostFSError) {
        path = procfs.path("kpageflags")
        let f = open(path, O_RDONLY | O_CLOEXEC)
        if f < 0 {
            let err = HostFSError(errno: errno, path: path, operation: "open")
            if err.code == .notFound { return nil }
            throw err
        }
        fd = f
    }

    deinit { close(fd) }

    /// Reads up to `buf.count` entries starting at `pfn`; returns whole entries read (0 at EOF,
    /// which is past the highest PFN the kernel has).
    public func read(into buf: UnsafeMutableBufferPointer<UInt64>, pfn: UInt64) throws(HostFSError) -> Int {
        let raw = UnsafeMutableRawBufferPointer(buf)
        var done = 0
        while done < raw.count {
            let n = pread(fd, raw.baseAddress! + done, raw.count - done, off_t(pfn * 8) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw HostFSError(errno: errno, path: path, operation: "pread")
            }
            if n == 0 { break }
            done += n
        }
        guard done % 8 == 0 else {
            throw HostFSError(.malformed, path: path, "read \(done) bytes at PFN \(pfn): not whole 8-byte entries")
        }
        return done / 8
    }
}
