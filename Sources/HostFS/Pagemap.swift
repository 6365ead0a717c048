#if canImport(Glibc)
import Glibc
#endif

/// Reads physical frame numbers of our own pages from `self/pagemap` under procfs
/// (one u64 per virtual page: bit 63 present, bits 0-54 PFN; the PFN reads as 0 without
/// CAP_SYS_ADMIN since Linux 4.2, so then `isUsable` is false and no PFN is reported).
public final class PagemapReader: @unchecked Sendable {
    private let fd: Int32
    private let pageSize: Int
    /// Whether PFNs are readable (the file opened and a resident page of ours showed a PFN).
    public let isUsable: Bool
    /// Why not, when not usable.
    public let reason: String?

    public init(procfs: ProcFS) {
        pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        let path = procfs.path("self/pagemap")
        let f = open(path, O_RDONLY | O_CLOEXEC)
        fd = f
        if f < 0 {
            isUsable = false
            reason = "\(path): \(String(cString: strerror(errno)))"
            return
        }
        // Probe with a page we just touched.
        let probe = UnsafeMutableRawPointer.allocate(byteCount: pageSize, alignment: pageSize)
        probe.storeBytes(of: 1, as: UInt64.self)
        var entry: UInt64 = 0
        let n = pread(f, &entry, 8, off_t(UInt(bitPattern: probe) / UInt(pageSize) * 8))
        probe.deallocate()
        if n == 8, entry & (1 << 63) != 0, entry & ((1 << 55) - 1) != 0 {
            isUsable = true
            reason = nil
        } else {
            isUsable = false
            reason = "\(path) gives no PFNs (needs CAP_SYS_ADMIN)"
        }
    }

    deinit { if fd >= 0 { close(fd) } }

    /// PFNs of `count` consecutive pages from `address` (0 for a page not present).
    public func frames(_ address: UnsafeRawPointer, count: Int, stride: Int? = nil) -> [UInt64] {
        guard isUsable, count > 0 else { return [] }
        let stride = stride ?? pageSize
        let step = stride / pageSize
        let first = UInt(bitPattern: address) / UInt(pageSize)
        let span = (count - 1) * step + 1
        var entries = [UInt64](repeating: 0, count: span)
        let want = span * 8
        let n = entries.withUnsafeMutableBytes { pread(fd, $0.baseAddress, want, off_t(first * 8)) }
        guard n == want else { return [UInt64](repeating: 0, count: count) }
        return (0..<count).map { i in
            let e = entries[i * step]
            return e & (1 << 63) != 0 ? e & ((1 << 55) - 1) : 0
        }
    }

    /// The physical address of one virtual address, when known.
    public func physicalAddress(of address: UInt) -> UInt64? {
        guard isUsable else { return nil }
        let page = UnsafeRawPointer(bitPattern: address & ~UInt(pageSize - 1))
        guard let page, let pfn = frames(page, count: 1).first, pfn != 0 else { return nil }
        return pfn * UInt64(pageSize) + UInt64(address & UInt(pageSize - 1))
    }
}
