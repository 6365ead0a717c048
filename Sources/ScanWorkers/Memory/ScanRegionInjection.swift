#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CScanKernel

/// Fault injection into a region: bit flips, lost backing and kernel poison (tests, and the
/// control API's inject through `ScanWorker.inject`).
extension ScanRegion {

    /// XORs `mask` into word `wordIndex` (8-byte words from `base`): through the alias mapping of the
    /// memfd when the page still has its memfd backing (the scanner's mapping sees the change, as with
    /// a flip in DRAM), in place otherwise. Throws `.invalidArgument` for a word outside the region or
    /// a zero mask, `.injectFailed` when the page has no backing (lost or poisoned, not yet scanned).
    public func injectBitFlip(wordIndex: Int, mask: UInt64) throws(ScanError) {
        guard wordIndex >= 0, wordIndex < byteCount / 8 else {
            throw ScanError(.invalidArgument, "word \(wordIndex) is outside \(name) (0..<\(byteCount / 8))")
        }
        guard mask != 0 else { throw ScanError(.invalidArgument, "bit flip mask must have at least one bit set") }
        let page = wordIndex * 8 / pageSize
        let target: UnsafeMutableRawPointer
        switch State(rawValue: states[page]) ?? .backed {
        case .lost, .poisoned, .dead:
            throw ScanError(.injectFailed, "page \(page) of \(name) has no usable backing (injected fault not yet scanned, or retired)")
        case .replaced:
            target = base + wordIndex * 8
        case .backed:
            if fd >= 0 {
                target = try aliasMapping() + wordIndex * 8
            } else {
                target = base + wordIndex * 8
            }
        }
        let word = target.assumingMemoryBound(to: UInt64.self)
        word.pointee ^= mask
    }

    /// Makes page `page` raise a real SIGBUS (`BUS_ADRERR`) on its next read: a fresh memfd, mapped
    /// over it with MAP_FIXED, is truncated to nothing. The next verify counts it as lost backing and
    /// replaces it. Throws `.invalidArgument` for a page outside the region, `.injectFailed` on failure.
    public func injectLostBacking(page: Int) throws(ScanError) {
        guard page >= 0, page < pageCount else {
            throw ScanError(.invalidArgument, "page \(page) is outside \(name) (0..<\(pageCount))")
        }
        guard states[page] != State.dead.rawValue else {
            throw ScanError(.injectFailed, "page \(page) of \(name) is retired and no longer scanned")
        }
        let old = State(rawValue: states[page]) ?? .backed
        mappingGeneration &+= 1
        if mcescan_map_lost_backing(address(ofPage: page), pageSize) != 0 {
            throw ScanError(.injectFailed, "map a truncated memfd over page \(page) of \(name)", errno: errno)
        }
        if fd >= 0, old == .backed { _ = mcescan_punch_hole(fd, UInt64(page * pageSize), UInt64(pageSize)) }
        states[page] = State.lost.rawValue
    }

    /// Poisons the frame behind page `page` with `madvise(MADV_HWPOISON)`: real, the kernel retires
    /// the physical page until reboot and counts it (HardwareCorrupted, memory_failure stats). The
    /// next verify gets SIGBUS `BUS_MCEERR_AR` and counts it as poisoned. Needs CAP_SYS_ADMIN and a
    /// kernel with CONFIG_MEMORY_FAILURE: throws `.permissionDenied` / `.unsupported` saying which.
    public func injectHardwarePoison(page: Int) throws(ScanError) {
        guard page >= 0, page < pageCount else {
            throw ScanError(.invalidArgument, "page \(page) is outside \(name) (0..<\(pageCount))")
        }
        let state = State(rawValue: states[page]) ?? .backed
        guard state == .backed || state == .replaced else {
            throw ScanError(.injectFailed, "page \(page) of \(name) has no usable backing (injected fault not yet scanned, or retired)")
        }
        let addr = address(ofPage: page)
        if mcescan_madvise_hwpoison(addr, pageSize) != 0 {
            let e = errno
            switch e {
            case EPERM:
                throw ScanError(.permissionDenied, "madvise(MADV_HWPOISON) needs CAP_SYS_ADMIN (run as root)")
            case EINVAL where access("/proc/sys/vm/memory_failure_recovery", F_OK) != 0:
                throw ScanError(.unsupported, "madvise(MADV_HWPOISON) is not available: this kernel is built without "
                    + "CONFIG_MEMORY_FAILURE (no /proc/sys/vm/memory_failure_recovery); use lost-backing injection instead")
            default:
                throw ScanError(.injectFailed, "madvise(MADV_HWPOISON) on page \(page) of \(name)", errno: e)
            }
        }
        // Kernels that signal during the madvise (BUS_MCEERR_AR to the caller) left a notice in the
        // out-of-scan table: drop it, the next verify finds and counts the page itself.
        var notices = [UInt64](repeating: 0, count: 8)
        _ = mcescan_take_async_poison_in(UInt(bitPattern: addr), pageSize, &notices, notices.count)
        states[page] = State.poisoned.rawValue
        mappingGeneration &+= 1
    }

    /// The second mapping of the memfd through which bit flips are written (made on first use).
    private func aliasMapping() throws(ScanError) -> UnsafeMutableRawPointer {
        if let alias { return alias }
        guard let p = mmap(nil, byteCount, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), p != MAP_FAILED else {
            throw ScanError(.injectFailed, "map a second view of \(name) for bit flips", errno: errno)
        }
        alias = p
        return p
    }
}
