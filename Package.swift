// swift-tools-version:6.0
//
// Needletail: a Swift web-application framework for Linux that owns the path from system calls
// to user sessions. Dependencies are limited on purpose (see docs/ARCHITECTURE.md):
// swift-argument-parser for the demo's command line, swift-log for logging. Nothing else.
import PackageDescription

let package = Package(
    name: "Needletail",
    products: [
        .library(name: "Needletail", targets: ["Needletail"]),
        .executable(name: "needletail-demo", targets: ["needletail-demo"]),
        .executable(name: "needletail-store", targets: ["needletail-store"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
    ],
    targets: [
        // Linux system calls that Swift's Glibc module does not export (epoll, eventfd, accept4).
        .target(name: "CNeedletailLinux"),
        // Byte buffers and chunk chains: shared by the loop (which writes them) and HTML (which renders them).
        .target(name: "NeedletailBytes"),
        .target(name: "NeedletailLoop", dependencies: ["CNeedletailLinux", "NeedletailBytes"]),
        // HTML, CSS: element types, attributes and CSS properties generated from the tables in
        // Spec/ by scripts/generate-html (output committed under Generated/).
        .target(name: "NeedletailHTML", dependencies: ["NeedletailBytes"], exclude: ["Spec"]),
        // JavaScript written in Swift; the client runtime is written with it.
        .target(name: "NeedletailJS", dependencies: ["NeedletailBytes", "NeedletailHTML"]),
        // Records in memory, made durable by a checksummed append-only log (Glibc, and the C
        // shim for futex(2): group commit's waiters sleep on it).
        .target(name: "NeedletailStore", dependencies: ["CNeedletailLinux"]),
        .target(name: "NeedletailWeb", dependencies: ["NeedletailBytes", "NeedletailHTML", "NeedletailJS"]),
        .target(name: "NeedletailServer", dependencies: [
            "CNeedletailLinux", "NeedletailLoop", "NeedletailWeb",
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Debian's libfcgi (libfcgi-dev), for the conventional blocking responder that the
        // benchmarks compare the native FastCGI codec with. Kept out of NeedletailServer so that
        // apps that do not use it need no libfcgi.
        .systemLibrary(name: "CFCGI", providers: [.apt(["libfcgi-dev"])]),
        .target(name: "NeedletailFCGICompat", dependencies: [
            "CFCGI", "NeedletailServer",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "Needletail", dependencies: [
            "NeedletailBytes", "NeedletailHTML", "NeedletailJS", "NeedletailWeb", "NeedletailServer", "NeedletailLoop", "NeedletailStore",
        ]),
        .executableTarget(name: "needletail-demo", dependencies: [
            "Needletail", "NeedletailFCGICompat",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Check, repair and compact store logs; drives the crash tests.
        .executableTarget(name: "needletail-store", dependencies: [
            "NeedletailStore", "NeedletailLoop",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // Fuzz targets (docs/SECURITY.md): built with libFuzzer and ASan by scripts/fuzz
        // (-DFUZZING); an ordinary build replays inputs (files or folders) through the same code.
        .executableTarget(name: "needletail-fuzz", dependencies: [
            "NeedletailServer", "NeedletailWeb", "NeedletailStore",
        ]),
        .testTarget(name: "NeedletailLoopTests", dependencies: ["NeedletailLoop", "CNeedletailLinux"]),
        // MustNotCompile/ holds sources that a test compiles with swiftc expecting errors.
        .testTarget(name: "NeedletailHTMLTests", dependencies: ["NeedletailHTML"], exclude: ["MustNotCompile"]),
        .testTarget(name: "NeedletailJSTests", dependencies: ["NeedletailJS"]),
        .testTarget(name: "NeedletailWebTests", dependencies: ["NeedletailWeb"]),
        .testTarget(name: "NeedletailStoreTests", dependencies: ["NeedletailStore"]),
        .testTarget(name: "NeedletailServerTests", dependencies: ["NeedletailServer", "Needletail", "CNeedletailLinux"]),
    ],
    swiftLanguageModes: [.v6]
)
