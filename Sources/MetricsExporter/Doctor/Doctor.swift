import HostFS

#if canImport(Glibc)
import Glibc
#endif

/// How well this host supports one capability.
public enum CapabilityStatus: String, Sendable, CaseIterable {
    /// Works as designed.
    case ok
    /// Present, but something (privilege, limit, configuration) reduces what the exporter can do.
    case limited
    /// Not offered by this kernel or hardware.
    case missing
}

/// One row of the doctor report.
public struct CapabilityCheck: Sendable, Equatable {
    /// Stable snake_case identifier (the JSON `name`).
    public var name: String
    /// ok, limited or missing.
    public var status: CapabilityStatus
    /// What was found, in one or two sentences.
    public var detail: String
    /// What to do about it; empty when the status is ok.
    public var remedy: String
    /// Exactly what was looked at: kernel paths (as the kernel names them, `/sys/...`, `/proc/...`)
    /// and process facts.
    public var checked: [String]

    public init(name: String, status: CapabilityStatus, detail: String, remedy: String = "", checked: [String]) {
        self.name = name
        self.status = status
        self.detail = detail
        self.remedy = remedy
        self.checked = checked
    }
}

/// The facts about the running process that doctor needs besides the sysfs and procfs trees.
/// `live()` reads them; tests inject fixed values so golden files are stable.
public struct DoctorProbe: Sendable, Equatable {
    /// RLIMIT_MEMLOCK soft limit in bytes; nil means unlimited.
    public var memlockLimit: UInt64?
    /// CAP_SYS_ADMIN in the effective set (pagemap PFNs, kpageflags, MADV_HWPOISON).
    public var capSysAdmin: Bool
    /// CAP_IPC_LOCK in the effective set (mlock beyond RLIMIT_MEMLOCK).
    public var capIPCLock: Bool
    /// `/boot/config-<release>`, read when `<procfs>/config.gz` is absent; nil to skip.
    public var bootConfigPath: String?
    /// The arena each worker wants to lock (`--scan.arena-bytes` default).
    public var arenaBytes: UInt64

    /// The default `--scan.arena-bytes` (64 MiB, the same as `WorkerSettings.defaultArenaBytes`).
    public static let defaultArenaBytes: UInt64 = 64 << 20

    public init(memlockLimit: UInt64?, capSysAdmin: Bool, capIPCLock: Bool, bootConfigPath: String? = nil,
                arenaBytes: UInt64 = DoctorProbe.defaultArenaBytes) {
        self.memlockLimit = memlockLimit
        self.capSysAdmin = capSysAdmin
        self.capIPCLock = capIPCLock
        self.bootConfigPath = bootConfigPath
        self.arenaBytes = arenaBytes
    }

    /// The calling process: `getrlimit(RLIMIT_MEMLOCK)`, `CapEff` of the real `/proc/self/status`
    /// (capabilities belong to this process, not to a `--path.procfs` tree) and `uname -r`.
    public static func live(arenaBytes: UInt64 = DoctorProbe.defaultArenaBytes) -> DoctorProbe {
        var limit = rlimit()
        var memlock: UInt64? = nil
        if getrlimit(__rlimit_resource_t(__RLIMIT_MEMLOCK.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max {
            memlock = UInt64(limit.rlim_cur)
        }
        let capEff = (try? HostTree(root: "/").readString("proc/self/status")).flatMap(HostFS.parseCapEff) ?? 0
        var name = utsname()
        uname(&name)
        let release = withUnsafeBytes(of: name.release) { raw in
            String(cString: raw.baseAddress!.assumingMemoryBound(to: CChar.self))
        }
        return DoctorProbe(memlockLimit: memlock, capSysAdmin: capEff & (1 << 21) != 0, capIPCLock: capEff & (1 << 14) != 0,
                           bootConfigPath: "/boot/config-\(release)", arenaBytes: arenaBytes)
    }
}

/// What this host supports for each capability the exporter uses, and why not. Read-only: it opens and
/// reads files, never writes one, never calls `madvise`, never poisons anything.
public struct DoctorReport: Sendable, Equatable {
    /// One row per capability, in a fixed order (the golden files depend on it).
    public var checks: [CapabilityCheck]

    public init(checks: [CapabilityCheck]) { self.checks = checks }

    /// Runs every check against the given trees and process facts.
    public static func run(sysfs: SysFS, procfs: ProcFS, probe: DoctorProbe) -> DoctorReport {
        let d = DoctorChecks(sysfs: sysfs, procfs: procfs, probe: probe)
        return DoctorReport(checks: [d.topology(), d.mlock(), d.pagemap(), d.kpageflags(), d.memoryFailure(),
                                     d.hugetlb(), d.edacScrub(), d.madvHwpoison()])
    }

    /// Count of checks with the given status.
    public func count(_ status: CapabilityStatus) -> Int { checks.filter { $0.status == status }.count }
}

/// Binary sizes: `64 MiB`, `32 KiB`, `8 GiB`, `512 B`.
func formatBytes(_ bytes: UInt64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
    var value = bytes
    var unit = 0
    while unit < units.count - 1 && value >= 1024 && value % 1024 == 0 {
        value /= 1024
        unit += 1
    }
    return "\(value) \(units[unit])"
}
