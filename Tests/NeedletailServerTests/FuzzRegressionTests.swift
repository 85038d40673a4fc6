import NeedletailTestSupport
import Foundation
@_spi(Fuzzing) import NeedletailServer
@_spi(Fuzzing) import NeedletailStore
import NeedletailStoreTestSupport
@_spi(Fuzzing) import NeedletailHTTP
import Testing

/// Every seed of the fuzz corpus and every input the fuzzer ever crashed on (Fuzz/regressions/,
/// one file per bug, named after it) replayed through the fuzz targets' code: a crash here is a
/// bug come back. scripts/fuzz is the fuzzing itself.
@Suite struct FuzzRegressionTests {
    static func inputs(_ target: String) throws -> [(name: String, bytes: [UInt8])] {
        var all: [(String, [UInt8])] = []
        for folder in ["Fuzz/corpus/", "Fuzz/regressions/"] {
            let dir = packageRoot + "/" + folder + target
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { continue }
            for name in names.sorted() {
                all.append((folder + target + "/" + name, Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name)))))
            }
        }
        return all
    }

    func replay(_ target: String, minimum: Int, _ run: (UnsafeRawBufferPointer) -> Int) throws {
        let inputs = try Self.inputs(target)
        #expect(inputs.count >= minimum, "\(target): seeds missing")
        for input in inputs {
            _ = input.bytes.withUnsafeBytes(run)
        }
    }

    @Test func http() throws {
        try replay("http", minimum: 10, ServerFuzzing.http)
        // The seeds are real requests: the decoder must find them (not just survive them).
        let get = Array("\0GET /a?n=1 HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n".utf8)
        #expect(get.withUnsafeBytes(ServerFuzzing.http) > 2)
    }

    @Test func fastCGI() throws {
        try replay("fastcgi", minimum: 10, ServerFuzzing.fastCGI)
        let seed = try #require(Self.inputs("fastcgi").first { $0.name.hasSuffix("/multiplexed") })
        #expect(seed.bytes.withUnsafeBytes(ServerFuzzing.fastCGI) > 2)
    }

    @Test func tls() throws {
        try replay("tls", minimum: 5, ServerFuzzing.tls)
        // Plaintext comes through the record layer into the decoder; raw bytes after the
        // handshake decrypt to nothing.
        let get = Array("\0GET /a HTTP/1.1\r\nHost: a\r\n\r\n".utf8)
        let direct = get.withUnsafeBytes(ServerFuzzing.http)
        #expect(direct > 2)
        #expect(get.withUnsafeBytes(ServerFuzzing.tls) == get.count - 1 + direct)
        let raw = Array("\u{1}\u{17}\u{3}\u{3}\u{0}\u{5}hello".utf8)
        #expect(raw.withUnsafeBytes(ServerFuzzing.tls) == 0)
    }

    @Test func http2() throws {
        try replay("http2", minimum: 5, ServerFuzzing.http2)
        // A seed with one GET is answered (the server's SETTINGS, HEADERS, DATA), not refused.
        let get = try #require(Self.inputs("http2").first { $0.name.hasSuffix("/get") })
        #expect(get.bytes.withUnsafeBytes(ServerFuzzing.http2) > 60)
        let big = try #require(Self.inputs("http2").first { $0.name.hasSuffix("/big-window") })
        #expect(big.bytes.withUnsafeBytes(ServerFuzzing.http2) > 100_000)
    }

    @Test func decoders() throws {
        try replay("decoders", minimum: 10, WebFuzzing.decoders)
    }

    @Test func storeLog() throws {
        let path = makeTempDir("needletail-fuzz-replay") + "/store.log"
        try replay("store-log", minimum: 5) { StoreFuzzing.logReader($0, path: path, record: SampleRecord.self, key: \.key) }
        // A record id beyond Int.max in a well-framed entry was a trap; now the log is refused.
        let crash = try #require(Self.inputs("store-log").first { $0.name.hasSuffix("/record-id-over-int-max") })
        #expect(crash.bytes.withUnsafeBytes { StoreFuzzing.logReader($0, path: path, record: SampleRecord.self, key: \.key) } == 0)
        let framed = try #require(Self.inputs("store-log").first { $0.name.hasSuffix("/framed") })
        #expect(framed.bytes.withUnsafeBytes { StoreFuzzing.logReader($0, path: path, record: SampleRecord.self, key: \.key) } == 2)
    }
}
