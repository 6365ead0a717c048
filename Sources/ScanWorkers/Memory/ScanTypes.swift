#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CScanKernel

/// Outcome of scanning one page: an enum, each outcome counted.
public enum PageOutcome: String, Sendable, Hashable, CaseIterable {
    /// Every word matched the pattern.
    case clean
    /// At least one word differed from the pattern (silent corruption, or a faulty core).
    case corrupted
    /// Reading raised SIGBUS with `BUS_MCEERR_AR`/`BUS_MCEERR_AO`: the kernel marked the frame poisoned.
    case poisoned
    /// Reading raised SIGBUS with `BUS_ADRERR`/`BUS_OBJERR` (or another code): the mapping lost its backing.
    case lostBacking
    /// The page was not read (retired and could not be replaced).
    case skipped
}

/// The `si_code` values of SIGBUS (uapi `asm-generic/siginfo.h`).
public enum SigbusSiCode {
    public static let adrerr: Int32 = 2
    public static let objerr: Int32 = 3
    public static let mceerrAR: Int32 = 4
    public static let mceerrAO: Int32 = 5
}

/// One 64-bit word that did not hold the expected pattern.
public struct Mismatch: Sendable, Equatable {
    /// Byte offset of the word from the region's base.
    public var offset: Int
    public var expected: UInt64
    public var actual: UInt64

    public init(offset: Int, expected: UInt64, actual: UInt64) {
        self.offset = offset
        self.expected = expected
        self.actual = actual
    }

    /// Bits expected 0 and read 1.
    public var flips0to1: Int { ((expected ^ actual) & actual).nonzeroBitCount }
    /// Bits expected 1 and read 0.
    public var flips1to0: Int { ((expected ^ actual) & expected).nonzeroBitCount }
}

/// One SIGBUS survived while reading a page of a region (the page has been retired).
public struct PageFault: Sendable, Equatable {
    /// Index of the page in its region.
    public var pageIndex: Int
    /// `si_addr` of the signal (for out-of-scan notices: the address the kernel reported).
    public var address: UInt
    /// `si_code`: see `SigbusSiCode`. Out-of-scan notices are reported as `BUS_MCEERR_AO`.
    public var siCode: Int32
    /// `si_addr_lsb` (log2 of the lost extent) for poison; 0 when the kernel gave none.
    public var addressLSB: Int32
    /// `.poisoned` for MCEERR_AR/AO, `.lostBacking` for ADRERR/OBJERR and any other code.
    public var outcome: PageOutcome

    public init(pageIndex: Int, address: UInt, siCode: Int32, addressLSB: Int32) {
        self.pageIndex = pageIndex
        self.address = address
        self.siCode = siCode
        self.addressLSB = addressLSB
        self.outcome = PageFault.outcome(forCode: siCode)
    }

    /// The page outcome a SIGBUS `si_code` stands for.
    public static func outcome(forCode code: Int32) -> PageOutcome {
        SigbusCode(siCode: code).isPoison ? .poisoned : .lostBacking
    }
}

/// What one chunk verify found.
public struct ChunkResult: Sendable, Equatable {
    /// Pages read to the end without a fault.
    public var pagesVerified: Int = 0
    /// Words compared (only of pages read to the end).
    public var wordsChecked: UInt64 = 0
    /// Words that differed from the pattern (all counted; the first few are in `mismatches`).
    public var corruptedWords: UInt64 = 0
    /// Bits expected 0, read 1.
    public var flips0to1: UInt64 = 0
    /// Bits expected 1, read 0.
    public var flips1to0: UInt64 = 0
    /// The first `ScanRegion.maxMismatchesPerChunk` mismatching words, in address order.
    public var mismatches: [Mismatch] = []
    /// Pages whose read raised SIGBUS, each reported once; they have been replaced.
    public var faults: [PageFault] = []
    /// Pages not read because they were retired and could not be replaced.
    public var pagesSkipped: Int = 0

    public init() {}
}

/// An error from a scan region or the scan kernel: a code and a message naming the cause.
public struct ScanError: Error, Sendable, CustomStringConvertible, Equatable {
    public enum Code: String, Sendable {
        case mapFailed, lockFailed, unsupported, permissionDenied, invalidArgument, injectFailed
    }
    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// `operation: strerror(err)` with the given code.
    init(_ code: Code, _ operation: String, errno err: Int32) {
        self.init(code, "\(operation): \(String(cString: strerror(err))) (errno \(err))")
    }

    public var description: String { "\(code.rawValue): \(message)" }
}

/// The process-wide face of the C scan kernel (`Sources/CScanKernel`).
public enum ScanKernel {
    /// The vector variant in use ("avx2", "sse2", "neon" or "scalar"), chosen once at start-up
    /// from the CPU's features (`__builtin_cpu_supports`).
    public static var variant: String { String(cString: mcescan_kernel_variant()) }

    /// Every variant this CPU can run, best first.
    public static var supportedVariants: [String] {
        var names = [UnsafePointer<CChar>?](repeating: nil, count: 8)
        let n = mcescan_variant_names(&names, names.count)
        return names.prefix(n).compactMap { $0.map { String(cString: $0) } }
    }

    /// Forces a variant for the whole process (benchmarks; tests use `fill/verify(variant:)`).
    public static func force(variant name: String) throws(ScanError) {
        if mcescan_force_variant(name) != 0 {
            throw ScanError(.unsupported, "kernel variant '\(name)' is not available on this CPU (available: \(supportedVariants.joined(separator: ", ")))")
        }
    }

    /// Installs the process-wide SIGBUS/SIGSEGV handler (once) and this thread's alternate signal
    /// stack. Scanning calls it itself; call it at worker start to fail early.
    public static func prepareThread() throws(ScanError) {
        if mcescan_prepare_thread() != 0 { throw ScanError(.mapFailed, "prepare scan thread (sigaction/sigaltstack)", errno: errno) }
    }

    /// Poison notices lost because the out-of-scan table was full (should stay 0).
    public static var asyncPoisonDropped: UInt64 { mcescan_async_poison_dropped() }

    /// The pattern word expected at `address` for a pass (`mcescan_pattern_word`).
    @inline(__always)
    public static func patternWord(address: UInt, seed: UInt64, invert: Bool) -> UInt64 {
        mcescan_pattern_word(UInt64(address), seed, invert ? 1 : 0)
    }
}
