// swift-tools-version: 6.0
import PackageDescription

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
        // Writes the git revision into the build (mcescan_exporter_build_info{revision}).
        .plugin(name: "RevisionPlugin", capability: .buildTool()),
        .target(
            name: "ScanWorkers",
            dependencies: ["CNUMA"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .target(
            name: "MetricsExporter",
            dependencies: [
                "ScanWorkers", "CMicroHTTPD", "CZlib",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)],
            plugins: ["RevisionPlugin"]
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
            exclude: ["Golden"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // Shared by the test targets: a raw HTTP client, temp trees, joinable threads.
        .target(name: "TestSupport", path: "Tests/TestSupport", swiftSettings: [.swiftLanguageMode(.v6)]),
        .testTarget(
            name: "ControlAPITests",
            dependencies: ["MetricsExporter", "ScanWorkers", "TestSupport"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(
            name: "HTTPServerTests",
            dependencies: ["MetricsExporter", "ScanWorkers", "TestSupport"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)
