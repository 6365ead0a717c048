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
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        // System libraries (pkg-config names as Debian ships them).
        .systemLibrary(name: "CMicroHTTPD", pkgConfig: "libmicrohttpd", providers: [.apt(["libmicrohttpd-dev"])]),
        .systemLibrary(name: "CNUMA", pkgConfig: "numa", providers: [.apt(["libnuma-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // bcrypt for basic auth (crypt_r) and the TLS checks/HMAC behind --web.config.file.
        .systemLibrary(name: "CCrypt", pkgConfig: "libcrypt", providers: [.apt(["libcrypt-dev"])]),
        .systemLibrary(name: "CGnuTLS", pkgConfig: "gnutls", providers: [.apt(["libgnutls28-dev"])]),
        // Writes the git revision into the build (mcescan_exporter_build_info{revision}).
        .plugin(name: "RevisionPlugin", capability: .buildTool()),
        // The scan hot loop and SIGBUS-safe reads (C: sigsetjmp/siglongjmp, vector variants).
        .target(name: "CScanKernel"),
        // Readers and pure parsers of the host's sysfs and procfs files, and the value formats of
        // flags (sizes, durations, node lists). Depends on nothing of this package.
        .target(name: "HostFS", swiftSettings: [.swiftLanguageMode(.v6)]),
        .target(
            name: "ScanWorkers",
            dependencies: ["HostFS", "CNUMA", "CScanKernel"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .target(
            name: "MetricsExporter",
            dependencies: [
                "HostFS", "ScanWorkers", "CMicroHTTPD", "CZlib", "CCrypt", "CGnuTLS",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)],
            plugins: ["RevisionPlugin"]
        ),
        .executableTarget(
            name: "mcescan-exporter",
            dependencies: [
                "MetricsExporter", "ScanWorkers", "HostFS",
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
        // Benchmark (not installed): verify/fill/read throughput of CScanKernel (benchmarks/verify-throughput.sh).
        .executableTarget(
            name: "mcescan-bench-kernel",
            dependencies: ["CScanKernel"],
            path: "benchmarks/kernel",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // Test helper (not installed): faults outside a scan and must die of the signal.
        .executableTarget(
            name: "mcescan-crashtest",
            dependencies: ["CScanKernel"],
            path: "Tests/CrashTest",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // Benchmark (not installed): worker CPU per GiB, idle CPU, wake latency (benchmarks/worker-bench.sh).
        .executableTarget(
            name: "mcescan-worker-bench",
            dependencies: ["ScanWorkers", "HostFS", "CScanKernel"],
            path: "benchmarks/workers",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(
            name: "HostFSTests",
            dependencies: ["HostFS"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(
            name: "WorkerTests",
            dependencies: ["ScanWorkers", "HostFS", "CScanKernel", "mcescan-crashtest"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(
            name: "ControlAPITests",
            dependencies: ["MetricsExporter", "ScanWorkers", "HostFS", "TestSupport"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(
            name: "HTTPServerTests",
            dependencies: ["MetricsExporter", "ScanWorkers", "HostFS", "TestSupport"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(
            name: "CollectorTests",
            dependencies: ["MetricsExporter", "ScanWorkers", "HostFS"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // Benchmark (not installed): hwpoison census CPU and scrape latency; see BENCHMARKS.md.
        .executableTarget(
            name: "mcescan-collectors-bench",
            dependencies: ["MetricsExporter", "HostFS"],
            path: "benchmarks/collectors",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        .testTarget(
            name: "SecurityTests",
            dependencies: ["MetricsExporter", "CCrypt", "TestSupport"],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)
