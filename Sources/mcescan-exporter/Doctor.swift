import HostFS
import ArgumentParser
import MetricsExporter
import ScanWorkers

/// `mcescan-exporter doctor`: what this host supports for each capability, and what to do about
/// what it lacks. A report, not a test: it exits 0 whatever it finds (2 on a usage error).
struct Doctor: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Report what this host supports (NUMA nodes, mlock limit, pagemap, kpageflags, memory_failure stats, hugetlb pool, EDAC scrub, MADV_HWPOISON), each with a remedy.",
        discussion: "Read-only: it reads sysfs and procfs (under --path.sysfs / --path.procfs) and this process's limits and capabilities; it never writes a file and never poisons memory. Exit status 0 whatever it finds.")

    @OptionGroup var common: CommonOptions

    @Flag(name: .customLong("json"), help: "Print the report as JSON (stable key and row order) instead of a table.")
    var json = false

    func run() throws {
        let report = DoctorReport.run(sysfs: SysFS(root: common.sysfs), procfs: ProcFS(root: common.procfs),
                                      probe: DoctorProbe.live())
        print(json ? report.renderJSON() : report.renderText(), terminator: "")
    }
}
