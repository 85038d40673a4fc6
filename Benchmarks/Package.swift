// swift-tools-version:6.0
//
// Benchmarks that need more than the main package may depend on (SQLite here; the Swift peers of
// the comparison harness later). Kept apart so that their dependencies never slow the main build.
import PackageDescription

let package = Package(
    name: "NeedletailBenchmarks",
    dependencies: [
        .package(name: "Needletail", path: ".."),
    ],
    targets: [
        .systemLibrary(name: "CSQLite", providers: [.apt(["libsqlite3-dev"])]),
        .executableTarget(name: "store-bench", dependencies: [
            "CSQLite",
            .product(name: "Needletail", package: "Needletail"),
        ]),
    ],
    swiftLanguageModes: [.v6]
)
