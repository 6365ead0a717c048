/// Facts about this build, fixed at compile time.
public enum BuildInfo {
    /// The exporter's release version.
    public static let version = "0.1.0"
    /// The git revision that was built (`-dirty` with uncommitted changes), or "unknown"
    /// outside a git checkout; written before each build by the RevisionPlugin.
    public static let revision = buildRevision
    /// The Swift compiler version that built the binary (major.minor).
    public static let swiftVersion: String = {
        #if compiler(>=6.5)
        return "6.5+"
        #elseif compiler(>=6.4)
        return "6.4"
        #elseif compiler(>=6.3)
        return "6.3"
        #elseif compiler(>=6.2)
        return "6.2"
        #elseif compiler(>=6.1)
        return "6.1"
        #else
        return "6.0"
        #endif
    }()
}

/// `mcescan_exporter_build_info{version,revision,swift_version} 1`.
public struct BuildInfoCollector: Collector {
    public let name = "build_info"
    public init() {}

    public func collect(into families: inout [MetricFamily]) throws {
        families.append(try MetricFamily(
            name: "mcescan_exporter_build_info",
            help: "A metric with a constant 1 labelled by the version, revision and Swift version the exporter was built from.",
            type: .gauge,
            metrics: [Metric(["revision": BuildInfo.revision, "swift_version": BuildInfo.swiftVersion, "version": BuildInfo.version], 1.0)]))
    }
}
