// swift-tools-version: 6.0
import PackageDescription

// The revision that goes into mcescan_exporter_build_info comes from the checkout being built
// (SwiftPM evaluates the manifest with git information). A tarball build says "unknown".
let revision: String = {
    guard let git = Context.gitInformation else { return "unknown" }
    return String(git.currentCommit.prefix(12)) + (git.hasUncommittedChanges ? "-dirty" : "")
}()

let package = Package(
    name: "mcescan-exporter",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "mcescan-exporter", targets: ["mcescan-exporter"]),
        .library(name: "MetricsExporter", targets: ["MetricsExporter"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // System libraries (pkg-config names as Debian ships them).
        .systemLibrary(name: "CMicroHTTPD", pkgConfig: "libmicrohttpd", providers: [.apt(["libmicrohttpd-dev"])]),
        .systemLibrary(name: "CNUMA", pkgConfig: "numa", providers: [.apt(["libnuma-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // Build facts that only the C preprocessor can carry from the manifest into the binary.
        .target(
            name: "CBuildInfo",
            cSettings: [.define("MCESCAN_REVISION", to: "\"\(revision)\"")]
        ),
        .target(
            name: "ScanWorkers",
            dependencies: ["CNUMA"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .target(
            name: "MetricsExporter",
            dependencies: [
                "ScanWorkers", "CMicroHTTPD", "CZlib", "CBuildInfo",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .executableTarget(
            name: "mcescan-exporter",
            dependencies: [
                "MetricsExporter", "ScanWorkers",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(
            name: "ExpositionFormatTests",
            dependencies: ["MetricsExporter", "CZlib"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(
            name: "HTTPServerTests",
            dependencies: ["MetricsExporter", "ScanWorkers"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)
