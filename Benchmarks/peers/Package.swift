// swift-tools-version:6.0
//
// The Swift peers of the comparison harness (Benchmarks/compare): the hello and fortunes pages
// on Hummingbird 2.28 and Vapor 4.122, as their documentation shows. A package of its own, so
// that neither the main build nor the other benchmarks ever compile them.
import PackageDescription

let package = Package(
    name: "NeedletailPeers",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird", exact: "2.28.1"),
        .package(url: "https://github.com/vapor/vapor", exact: "4.122.3"),
    ],
    targets: [
        // The pages' text, shared by both peers (escaping as a careful app would write it).
        .target(name: "PeerPages"),
        .executableTarget(
            name: "hummingbird-peer",
            dependencies: [
                "PeerPages", .product(name: "Hummingbird", package: "hummingbird"),
            ]),
        .executableTarget(
            name: "vapor-peer",
            dependencies: [
                "PeerPages", .product(name: "Vapor", package: "vapor"),
            ]),
    ],
    swiftLanguageModes: [.v6]
)
