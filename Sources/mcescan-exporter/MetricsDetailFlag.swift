import ArgumentParser
import MetricsExporter

// `--metrics.detail basic|full`. A value other than these is a usage error naming the flag and
// both accepted values, like every other enumerated flag.
extension MetricsDetail: ExpressibleByArgument {
    /// `--help` text of the flag.
    static let flagHelp = "Series per node: basic (what dashboards and alerts read) or full (every series and label, to debug one host); see docs/metrics.md."
}
