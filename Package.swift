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
        // What apps use to test their own pages without sockets (as HummingbirdTesting).
        .library(name: "NeedletailTesting", targets: ["NeedletailTesting"]),
        // The PostgreSQL client on the loops (libpq); apart, so that apps without it need no libpq.
        .library(name: "NeedletailPostgres", targets: ["NeedletailPostgres"]),
        .library(name: "NeedletailCluster", targets: ["NeedletailCluster", "NeedletailPostgres"]),
        // The sample record of the store's tools, crash tests and benchmark.
        .library(name: "NeedletailStoreTestSupport", targets: ["NeedletailStoreTestSupport"]),
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
        // One way to make system calls (EINTR, errno as errors), threads, clocks, random bytes.
        .target(name: "NeedletailPOSIX", dependencies: ["CNeedletailLinux"]),
        // Byte buffers and chunk chains: shared by the loop (which writes them) and HTML (which renders them).
        .target(name: "NeedletailBytes"),
        // Debian's zlib (zlib1g-dev) and brotli (libbrotli-dev): gzip for answers and assets,
        // brotli for assets compressed ahead of time (docs/COMPRESSION.md).
        .systemLibrary(name: "CZlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CBrotli", providers: [.apt(["libbrotli-dev"])]),
        .target(name: "NeedletailCompression", dependencies: ["CZlib", "CBrotli", "NeedletailBytes"]),
        // Debian's libssl-dev (OpenSSL 3): TLS on the native HTTPS listener (docs/TLS.md).
        .systemLibrary(name: "COpenSSL", providers: [.apt(["libssl-dev"])]),
        // Debian's libnghttp2-dev: HTTP/2 over TLS (docs/TLS.md).
        .systemLibrary(name: "CNghttp2", providers: [.apt(["libnghttp2-dev"])]),
        .target(name: "NeedletailLoop", dependencies: ["CNeedletailLinux", "COpenSSL", "NeedletailPOSIX", "NeedletailBytes"]),
        // HTML, CSS: element types, attributes and CSS properties generated from the tables in
        // Spec/ by scripts/generate-html (output committed under Generated/).
        .target(name: "NeedletailHTML", dependencies: ["NeedletailBytes"], exclude: ["Spec"]),
        // JavaScript written in Swift; the client runtime is written with it.
        .target(name: "NeedletailJS", dependencies: ["NeedletailBytes", "NeedletailHTML"]),
        // Records in memory, made durable by a checksummed append-only log (Glibc, and the C
        // shim for futex(2): group commit's waiters sleep on it).
        .target(name: "NeedletailStore", dependencies: ["CNeedletailLinux", "NeedletailPOSIX"]),
        .target(name: "NeedletailStoreTestSupport", dependencies: ["NeedletailStore"]),
        // The HTTP values every way in shares: requests, responses, the router, static files,
        // typed parameters, virtual hosts.
        .target(name: "NeedletailHTTP", dependencies: ["NeedletailBytes", "NeedletailHTML", "NeedletailPOSIX", "NeedletailCompression"]),
        // Live pages: sessions, views, actions, channels, the client runtime.
        .target(
            name: "NeedletailLive",
            dependencies: ["NeedletailBytes", "NeedletailHTML", "NeedletailJS", "NeedletailHTTP", "NeedletailPOSIX", "NeedletailCompression"]),
        // The codecs (HTTP/1.1, FastCGI, CGI) on the loops, and the server.
        .target(
            name: "NeedletailServer",
            dependencies: [
                "CNeedletailLinux", "CNghttp2", "NeedletailPOSIX", "NeedletailLoop", "NeedletailHTTP", "NeedletailCompression",
                .product(name: "Logging", package: "swift-log"),
            ]),
        // Debian's libfcgi (libfcgi-dev), for the conventional blocking responder that the
        // benchmarks compare the native FastCGI codec with. Kept out of NeedletailServer so that
        // apps that do not use it need no libfcgi.
        .systemLibrary(name: "CFCGI", providers: [.apt(["libfcgi-dev"])]),
        .target(
            name: "NeedletailFCGICompat",
            dependencies: [
                "CFCGI", "NeedletailServer", "NeedletailPOSIX",
                .product(name: "Logging", package: "swift-log"),
            ]),
        // Debian's libpq (libpq-dev), the PostgreSQL client library: driven non-blockingly, in
        // pipeline mode, from the loops by NeedletailPostgres (docs/POSTGRES.md says why not a
        // codec of our own or postgres-nio).
        .systemLibrary(name: "CPostgres", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .target(name: "NeedletailPostgres", dependencies: ["CPostgres", "NeedletailLoop", "NeedletailPOSIX", "NeedletailStore"]),
        // Several backends on one PostgreSQL: channels and sessions shared through it.
        .target(name: "NeedletailCluster", dependencies: ["NeedletailPostgres", "NeedletailLive", "NeedletailLoop"]),
        .target(
            name: "Needletail",
            dependencies: [
                "NeedletailBytes", "NeedletailHTML", "NeedletailJS", "NeedletailHTTP", "NeedletailLive", "NeedletailServer",
                "NeedletailLoop", "NeedletailStore", "NeedletailPOSIX", "NeedletailCompression",
            ]),
        .target(name: "NeedletailTesting", dependencies: ["NeedletailHTTP", "NeedletailLive", "NeedletailBytes"]),
        .executableTarget(
            name: "needletail-demo",
            dependencies: [
                "Needletail", "NeedletailFCGICompat", "NeedletailCluster", "NeedletailPostgres",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        // Check, repair and compact store logs; drives the crash tests.
        .executableTarget(
            name: "needletail-store",
            dependencies: [
                "NeedletailStore", "NeedletailStoreTestSupport", "NeedletailPOSIX", "CNeedletailLinux",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        // Fuzz targets (docs/SECURITY.md): built with libFuzzer and ASan by scripts/fuzz
        // (-DFUZZING); an ordinary build replays inputs (files or folders) through the same code.
        .executableTarget(
            name: "needletail-fuzz",
            dependencies: [
                "NeedletailServer", "NeedletailHTTP", "NeedletailStore", "NeedletailStoreTestSupport",
            ]),
        .testTarget(name: "NeedletailBytesTests", dependencies: ["NeedletailBytes"]),
        .testTarget(name: "NeedletailLoopTests", dependencies: ["NeedletailLoop", "NeedletailPOSIX", "CNeedletailLinux", "COpenSSL"]),
        // MustNotCompile/ holds sources that a test compiles with swiftc expecting errors.
        .testTarget(name: "NeedletailHTMLTests", dependencies: ["NeedletailHTML", "NeedletailTestSupport", "CNeedletailLinux"], exclude: ["MustNotCompile"]),
        .testTarget(name: "NeedletailJSTests", dependencies: ["NeedletailJS", "NeedletailTestSupport", "CNeedletailLinux"]),
        .testTarget(name: "NeedletailStoreTests", dependencies: ["NeedletailStore", "NeedletailStoreTestSupport", "NeedletailPOSIX", "NeedletailTestSupport", "CNeedletailLinux"]),
        .testTarget(name: "NeedletailHTTPTests", dependencies: ["NeedletailHTTP"]),
        .testTarget(name: "NeedletailCompressionTests", dependencies: ["NeedletailCompression", "NeedletailBytes"]),
        .testTarget(name: "NeedletailLiveTests", dependencies: ["NeedletailLive", "NeedletailTesting", "NeedletailPOSIX", "NeedletailLoop", "NeedletailTestSupport"]),
        // What the socket tests share: a blocking client, a test app, processes and ports.
        .target(
            name: "NeedletailTestSupport",
            dependencies: ["NeedletailServer", "NeedletailHTTP", "NeedletailLoop", "NeedletailBytes", "CNeedletailLinux"],
            path: "Tests/Support"),
        // The codecs and the server over real sockets, in-process (no outside program).
        .testTarget(
            name: "NeedletailServerTests",
            dependencies: ["NeedletailServer", "Needletail", "NeedletailTestSupport", "NeedletailStoreTestSupport", "CNeedletailLinux"]),
        // The PostgreSQL client against a real server (initdb into a temporary folder): the
        // full run, not the inner loop.
        .testTarget(
            name: "NeedletailPostgresTests",
            dependencies: ["NeedletailPostgres", "NeedletailCluster", "Needletail", "NeedletailTesting", "NeedletailTestSupport"]),
        // Suites that start nginx, lighttpd, Chromium, wrk, ab, curl or the demo binary: the
        // full run (`scripts/test`), not the inner loop (`scripts/test --fast`).
        .testTarget(
            name: "NeedletailIntegrationTests",
            dependencies: ["NeedletailServer", "Needletail", "NeedletailTestSupport", "CNeedletailLinux"]),
    ],
    swiftLanguageModes: [.v6]
)
