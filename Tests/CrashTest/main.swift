// mcescan-crashtest: a child process for WorkerTests (not installed). Each mode arms the CScanKernel
// SIGBUS handler, shows that a fault inside a scan is survived, then faults OUTSIDE a scan, which must
// still kill the process with the signal (the handler chains to the previous one: SIG_DFL when run
// with SWIFT_BACKTRACE=enable=no, the Swift backtracer otherwise). Exit codes: 0 the mode's survivable
// part ran and the process was expected to survive; 3 a setup step failed; 4 the process survived a
// fault that should have killed it.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CScanKernel

func fail(_ message: String, code: Int32 = 3) -> Never {
    let line = "mcescan-crashtest: \(message)\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
    exit(code)
}

/// Unbuffered, so the line is out before a crash.
func say(_ message: String) {
    let line = message + "\n"
    _ = line.withCString { write(1, $0, strlen($0)) }
}

let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
let pages = 4

/// Four pages of anonymous memory, the third one backed by a truncated memfd (reads raise SIGBUS).
func badMapping() -> UnsafeMutableRawPointer {
    guard let base = mmap(nil, pages * pageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
          base != MAP_FAILED else { fail("mmap: \(errno)") }
    mcescan_fill(base, pages * pageSize, 7, 0)
    if mcescan_map_lost_backing(base + 2 * pageSize, pageSize) != 0 { fail("map_lost_backing: \(errno)") }
    return base
}

/// Shows the handler is installed and recovering: a safe verify over the bad page survives it.
func recoverOnce(_ base: UnsafeMutableRawPointer) {
    if mcescan_prepare_thread() != 0 { fail("prepare_thread: \(errno)") }
    var result = mcescan_verify_result()
    var faults = mcescan_fault_list()
    let done = mcescan_verify_safe(base, pageSize, pages, 7, 0, 0, 0, 0, &result, &faults)
    guard done == pages - 1, faults.count == 1, result.corrupted_words == 0 else {
        fail("safe verify: done \(done) faults \(faults.count) corrupted \(result.corrupted_words)")
    }
    say("recovered fault in scan")
}

let mode = CommandLine.arguments.dropFirst().first ?? ""
switch mode {
case "unarmed-sigbus":
    // Read the lost page outside any scan: must die of SIGBUS.
    let base = badMapping()
    recoverOnce(base)
    let word = (base + 2 * pageSize).assumingMemoryBound(to: UInt64.self)
    let value = word.pointee
    say("read \(value) outside a scan and survived")
    exit(4)
case "unarmed-segv":
    // A plain segmentation fault after the handler is installed: must die of SIGSEGV.
    recoverOnce(badMapping())
    let bogus = UnsafeMutablePointer<UInt64>(bitPattern: 0x10)!
    say("read \(bogus.pointee) at 0x10 and survived")
    exit(4)
case "async-unregistered":
    // An action-optional poison notice for memory that is not ours: must die of SIGBUS.
    let base = badMapping()
    recoverOnce(base)
    _ = mcescan_raise_sigbus(base, 5 /* BUS_MCEERR_AO */, 12)
    say("survived a poison notice outside every registered region")
    exit(4)
case "async-registered":
    // The same notice inside a registered region is recorded and the process lives on.
    let base = badMapping()
    recoverOnce(base)
    if mcescan_register_region(UInt(bitPattern: base), pages * pageSize) != 0 { fail("register: \(errno)") }
    if mcescan_raise_sigbus(base + pageSize + 8, 5 /* BUS_MCEERR_AO */, 12) != 0 { fail("raise: \(errno)") }
    var taken = [UInt64](repeating: 0, count: 4)
    let n = mcescan_take_async_poison_in(UInt(bitPattern: base), pages * pageSize, &taken, 4)
    guard n == 1, taken[0] == UInt64(UInt(bitPattern: base + pageSize + 8)) else { fail("took \(n) notices") }
    say("recorded poison notice")
    exit(0)
case "async-ar-repeat":
    // An action-required notice outside a scan is recorded once (the kernel's signal during
    // madvise(MADV_HWPOISON)); the same address again on the same thread is a retried access to
    // poison, not a notice: it must die of SIGBUS instead of looping.
    let base = badMapping()
    recoverOnce(base)
    if mcescan_register_region(UInt(bitPattern: base), pages * pageSize) != 0 { fail("register: \(errno)") }
    if mcescan_raise_sigbus(base + 64, 4 /* BUS_MCEERR_AR */, 12) != 0 { fail("raise: \(errno)") }
    say("first action-required notice recorded")
    _ = mcescan_raise_sigbus(base + 64, 4 /* BUS_MCEERR_AR */, 12)
    say("survived a repeated action-required fault")
    exit(4)
default:
    fail("unknown mode '\(mode)' (accepted: unarmed-sigbus, unarmed-segv, async-unregistered, async-registered, async-ar-repeat)", code: 2)
}
