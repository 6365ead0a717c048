import HostFS
import MetricsExporter
import ScanWorkers
import Testing

/// Doctor goldens: the fixture host with fixed process facts, and a bare host (empty trees, no
/// privileges). `MCESCAN_UPDATE_GOLDEN=1 swift test --filter CollectorTests` rewrites them.
@Suite struct DoctorTests {
    static let privileged = DoctorProbe(memlockLimit: 8 << 20, capSysAdmin: true, capIPCLock: true)
    static let unprivileged = DoctorProbe(memlockLimit: 8 << 20, capSysAdmin: false, capIPCLock: false)

    @Test func fixtureTextGolden() {
        let report = DoctorReport.run(sysfs: fixtureSys, procfs: fixtureProc, probe: Self.privileged)
        expectGolden(report.renderText(), "doctor.txt")
    }

    @Test func fixtureJSONGolden() {
        let report = DoctorReport.run(sysfs: fixtureSys, procfs: fixtureProc, probe: Self.privileged)
        expectGolden(report.renderJSON(), "doctor.json")
    }

    @Test func bareHostTextGolden() {
        let t = TempTree()
        defer { t.remove() }
        let report = DoctorReport.run(sysfs: t.tree, procfs: t.tree, probe: Self.unprivileged)
        expectGolden(report.renderText(), "doctor-bare.txt")
    }

    @Test func everyCapabilityOfTheSpecIsReportedInOrder() {
        let report = DoctorReport.run(sysfs: fixtureSys, procfs: fixtureProc, probe: Self.privileged)
        #expect(report.checks.map(\.name) == ["numa_topology", "mlock_limit", "pagemap_pfn", "kpageflags",
                                              "memory_failure_stats", "hugetlb_pool", "edac_scrub", "madv_hwpoison"])
        #expect(report.checks.allSatisfy { $0.status == .ok && $0.remedy.isEmpty && !$0.checked.isEmpty })
    }

    @Test func everyShortcomingHasARemedy() {
        let t = TempTree()
        defer { t.remove() }
        for probe in [Self.privileged, Self.unprivileged] {
            for (sys, proc) in [(t.tree, t.tree), (fixtureSys, fixtureProc), (brokenSys, t.tree)] {
                let report = DoctorReport.run(sysfs: sys, procfs: proc, probe: probe)
                for check in report.checks where check.status != .ok {
                    #expect(!check.remedy.isEmpty, "\(check.name) \(check.status) has no remedy")
                }
            }
        }
    }

    @Test func unprivilegedProcessIsLimited() {
        let report = DoctorReport.run(sysfs: fixtureSys, procfs: fixtureProc, probe: Self.unprivileged)
        let status = Dictionary(uniqueKeysWithValues: report.checks.map { ($0.name, $0.status) })
        #expect(status["mlock_limit"] == .limited)     // 8 MiB < 64 MiB arena, no CAP_IPC_LOCK
        #expect(status["pagemap_pfn"] == .limited)     // PFNs read as 0
        #expect(status["madv_hwpoison"] == .limited)   // supported, but needs CAP_SYS_ADMIN
        #expect(status["kpageflags"] == .ok)           // the fixture file is readable; the real one is 0400 root
    }

    @Test func memlockLimitAgainstTheArena() {
        let ok = DoctorProbe(memlockLimit: nil, capSysAdmin: false, capIPCLock: false)
        let big = DoctorProbe(memlockLimit: 64 << 20, capSysAdmin: false, capIPCLock: false)
        let t = TempTree()
        defer { t.remove() }
        #expect(DoctorReport.run(sysfs: t.tree, procfs: t.tree, probe: ok).checks[1].status == .ok)
        #expect(DoctorReport.run(sysfs: t.tree, procfs: t.tree, probe: big).checks[1].status == .ok)
    }

    @Test func madvHwpoisonDecisionWithoutPoisoning() {
        let t = TempTree()
        defer { t.remove() }
        // Only the sysctl: CONFIG_MEMORY_FAILURE is implied.
        t.write("sys/vm/memory_failure_recovery", "1\n")
        var check = DoctorReport.run(sysfs: t.tree, procfs: t.tree, probe: Self.privileged).checks[7]
        #expect(check.status == .ok)
        #expect(check.detail.contains("vm.memory_failure_recovery=1"))
        // Recovery off: the kernel would panic.
        t.write("sys/vm/memory_failure_recovery", "0\n")
        check = DoctorReport.run(sysfs: t.tree, procfs: t.tree, probe: Self.privileged).checks[7]
        #expect(check.status == .limited)
        #expect(check.remedy.contains("memory_failure_recovery=1"))
        // A config that says "not set" wins over nothing else.
        let u = TempTree()
        defer { u.remove() }
        u.write("config.gz", Gzip.compress(Array("# CONFIG_MEMORY_FAILURE is not set\n".utf8))!)
        check = DoctorReport.run(sysfs: u.tree, procfs: u.tree, probe: Self.privileged).checks[7]
        #expect(check.status == .missing)
        #expect(check.detail.contains("CONFIG_MEMORY_FAILURE not set in /proc/config.gz"))
    }

    @Test func jsonEscapesAndStaysInOrder() {
        let report = DoctorReport(checks: [CapabilityCheck(name: "a", status: .limited, detail: "say \"hi\"\n", remedy: "x\\y", checked: ["/p"])])
        #expect(report.renderJSON() == """
            {
              "capabilities": [
                {
                  "name": "a",
                  "status": "limited",
                  "detail": "say \\"hi\\"\\n",
                  "remedy": "x\\\\y",
                  "checked": ["/p"]
                }
              ],
              "summary": {"ok": 0, "limited": 1, "missing": 0}
            }

            """)
    }
}
