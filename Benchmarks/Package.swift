// swift-tools-version:6.0
//
// Benchmarks that need more than the main package may depend on (SQLite, Plot, swift-mustache;
// the Swift peers of the comparison harness later). Kept apart so that their dependencies never slow the main build.
import PackageDescription

let package = Package(
    name: "NeedletailBenchmarks",
    dependencies: [
        .package(name: "Needletail", path: ".."),
        // The HTML peers of the render benchmark (issue 4): a Swift HTML DSL and Hummingbird's
        // template engine.
        .package(url: "https://github.com/JohnSundell/Plot", exact: "0.14.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", exact: "2.1.1"),
    ],
    targets: [
        .systemLibrary(name: "CSQLite", providers: [.apt(["libsqlite3-dev"])]),
        .executableTarget(
            name: "store-bench",
            dependencies: [
                "CSQLite",
                .product(name: "Needletail", package: "Needletail"),
                .product(name: "NeedletailStoreTestSupport", package: "Needletail"),
            ]),
        // The client side of postgres-bench (pgbench is the yardstick).
        .executableTarget(
            name: "pg-client-bench",
            dependencies: [
                .product(name: "NeedletailPostgres", package: "Needletail"),
                .product(name: "Needletail", package: "Needletail"),
            ]),
        // The gzip encoder per answer: spliced fragments against deflating the whole page.
        .executableTarget(name: "gzip-bench", dependencies: [.product(name: "Needletail", package: "Needletail")]),
        // Counts allocations (malloc interposition) for the render benchmark.
        .target(name: "CMallocCount"),
        .executableTarget(
            name: "render-bench",
            dependencies: [
                "CMallocCount",
                .product(name: "Needletail", package: "Needletail"),
                .product(name: "Plot", package: "Plot"),
                .product(name: "Mustache", package: "swift-mustache"),
            ]),
    ],
    swiftLanguageModes: [.v6]
)
