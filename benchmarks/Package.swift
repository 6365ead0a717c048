// swift-tools-version: 6.1
// Benchmarks live in their own package so the product build and CI do not compile the benchmark
// harness. Run from this folder: `swift package benchmark` (see BENCHMARKS.md at the top level).
import PackageDescription

let package = Package(
    name: "mcescan-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "mcescan-exporter", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "EncodeProbe",
            dependencies: [.product(name: "MetricsExporter", package: "mcescan-exporter")]
        ),
        .executableTarget(
            name: "ExpositionBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "MetricsExporter", package: "mcescan-exporter"),
            ],
            path: "Benchmarks/ExpositionBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
