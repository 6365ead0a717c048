// mcescan-bench-kernel: throughput of the C scan kernel on one thread, against a plain vectorized
// read of the same buffer measured in the same run (benchmarks/verify-throughput.sh runs it with
// stressapptest side by side). Build with -c release.
//
//   mcescan-bench-kernel [--bytes N[KiB|MiB|GiB]] [--rounds N] [--clock wall|thread] [--variant NAME]
//
// --clock thread times with CLOCK_THREAD_CPUTIME_ID (time on a CPU only), for hosts too busy for
// wall-clock numbers to mean anything; the default is wall clock.
//
// Each round sweeps the prefaulted buffer once, interleaving in 16 MiB segments: mcescan_read_reference
// (the plain read), mcescan_verify (the bare verify), mcescan_verify_safe over 4 KiB pages (the
// fault-safe path the workers use) and mcescan_fill (non-temporal). GB/s are 1e9 bytes of buffer
// swept per second. Prints one line per round and a summary of medians.
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CScanKernel

func die(_ message: String) -> Never {
    let line = "mcescan-bench-kernel: \(message)\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
    exit(2)
}

func say(_ message: String) {
    let line = message + "\n"
    _ = line.withCString { write(1, $0, strlen($0)) }
}

/// printf-style formatting without Foundation.
func fmt(_ format: String, _ args: CVarArg...) -> String {
    var buf = [CChar](repeating: 0, count: 512)
    _ = withVaList(args) { vsnprintf(&buf, buf.count, format, $0) }
    return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

func parseBytes(_ s: String) -> Int? {
    let units: [(String, Int)] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10), ("", 1)]
    for (suffix, scale) in units where s.hasSuffix(suffix) {
        guard let n = Int(s.dropLast(suffix.count)), n > 0 else { return nil }
        return n * scale
    }
    return nil
}

var bytes = 1 << 30
var clock = CLOCK_MONOTONIC
var rounds = 7
var args = CommandLine.arguments.dropFirst()
while let flag = args.popFirst() {
    guard let value = args.popFirst() else { die("\(flag) needs a value") }
    switch flag {
    case "--bytes":
        guard let b = parseBytes(value), b % 4096 == 0 else { die("--bytes: a positive multiple of 4096 (KiB/MiB/GiB suffixes), got '\(value)'") }
        bytes = b
    case "--rounds":
        guard let r = Int(value), (1...100).contains(r) else { die("--rounds: 1...100, got '\(value)'") }
        rounds = r
    case "--clock":
        switch value {
        case "wall": clock = CLOCK_MONOTONIC
        case "thread": clock = CLOCK_THREAD_CPUTIME_ID
        default: die("--clock: wall or thread, got '\(value)'")
        }
    case "--variant":
        if mcescan_force_variant(value) != 0 { die("--variant: '\(value)' is not available on this CPU") }
    default:
        die("unknown flag '\(flag)' (accepted: --bytes, --rounds, --clock, --variant)")
    }
}

@MainActor func now() -> Double {
    var ts = timespec()
    clock_gettime(clock, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

guard let buf = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0),
      buf != MAP_FAILED else { die("mmap \(bytes) bytes: errno \(errno)") }
if mcescan_prepare_thread() != 0 { die("mcescan_prepare_thread: errno \(errno)") }
let seed: UInt64 = 0x5eed_1234_abcd_0001
mcescan_fill(buf, bytes, seed, 0)

let variant = String(cString: mcescan_kernel_variant())
say("variant \(variant), buffer \(bytes) bytes, \(rounds) rounds, \(clock == CLOCK_MONOTONIC ? "wall" : "thread CPU") clock (GB/s = 1e9 B/s)")
say(String(repeating: "-", count: 72))
say("round   read   verify  verify_safe  refill_safe   fill   verify/read  safe/read")

var sink: UInt64 = 0
var failures: UInt64 = 0
typealias Op = (String, (UnsafeMutableRawPointer, Int) -> Void)
let ops: [Op] = [
    ("read", { p, n in sink &+= mcescan_read_reference(p, n) }),
    ("verify", { p, n in
        var r = mcescan_verify_result()
        mcescan_verify(p, n, seed, 0, &r)
        failures += r.corrupted_words
    }),
    ("verify_safe", { p, n in
        var r = mcescan_verify_result()
        var f = mcescan_fault_list()
        let done = mcescan_verify_safe(p, 4096, n / 4096, seed, 0, 0, 0, 0, &r, &f)
        failures += r.corrupted_words + UInt64(f.count) + UInt64(n / 4096 - done)
    }),
    // The arena pass: verify, then rewrite every line (here with the same pattern, so the buffer
    // stays valid for the other kernels; the work is the same as with the next pattern).
    ("refill_safe", { p, n in
        var r = mcescan_verify_result()
        var f = mcescan_fault_list()
        let done = mcescan_verify_safe(p, 4096, n / 4096, seed, 0, 1, seed, 0, &r, &f)
        failures += r.corrupted_words + UInt64(f.count) + UInt64(n / 4096 - done)
    }),
    ("fill", { p, n in mcescan_fill(p, n, seed, 0) }),
]
// Each round sweeps the buffer once in 16 MiB segments; segment i of round r runs op (i + r) % 5
// (backwards on odd rounds), so
// the four kernels interleave in time (they see the same background load and memory state) and
// every segment is cold (the previous segment is a different one; the buffer dwarfs the LLC).
let segment = min(bytes, 16 << 20)
let segments = bytes / segment
var rates: [String: [Double]] = [:]
var ratioVerify: [Double] = []
var ratioSafe: [Double] = []
for round in 0..<rounds {
    var seconds: [String: Double] = [:]
    var swept: [String: Int] = [:]
    for i in 0..<segments {
        // Odd rounds run the rotation backwards, so no kernel always follows the same one.
        let k = (i + round) % ops.count
        let (name, op) = ops[round % 2 == 0 ? k : ops.count - 1 - k]
        let p = buf + i * segment
        let start = now()
        op(p, segment)
        seconds[name, default: 0] += now() - start
        swept[name, default: 0] += segment
    }
    var t: [String: Double] = [:]
    for (name, _) in ops { t[name] = Double(swept[name] ?? 0) / max(seconds[name] ?? 1, 1e-9) / 1e9 }
    for (k, v) in t { rates[k, default: []].append(v) }
    ratioVerify.append(t["verify"]! / t["read"]!)
    ratioSafe.append(t["verify_safe"]! / t["read"]!)
    say(fmt("%5d %6.2f %8.2f %12.2f %12.2f %6.2f %12.3f %10.3f", round, t["read"]!, t["verify"]!,
            t["verify_safe"]!, t["refill_safe"]!, t["fill"]!, ratioVerify.last!, ratioSafe.last!))
}
if failures != 0 { die("verify reported \(failures) errors on a clean buffer") }
say(String(repeating: "-", count: 72))
say(fmt("median read %.2f GB/s, verify %.2f GB/s, verify_safe %.2f GB/s, refill_safe %.2f GB/s, fill %.2f GB/s",
           median(rates["read"]!), median(rates["verify"]!), median(rates["verify_safe"]!), median(rates["refill_safe"]!),
           median(rates["fill"]!)))
say(fmt("median ratio verify/read %.3f, verify_safe/read %.3f (sink %llu)", median(ratioVerify), median(ratioSafe), UInt64(sink & 1)))
say(fmt("RESULT read_gbps=%.3f verify_gbps=%.3f verify_safe_gbps=%.3f refill_safe_gbps=%.3f fill_gbps=%.3f verify_ratio=%.3f safe_ratio=%.3f",
           median(rates["read"]!), median(rates["verify"]!), median(rates["verify_safe"]!), median(rates["refill_safe"]!),
           median(rates["fill"]!), median(ratioVerify), median(ratioSafe)))
