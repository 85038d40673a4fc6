import NeedletailBytes
import NeedletailCompression
import Testing

/// Bytes that never die, for immortal links (as `StaticHTML` makes them).
private func immortal(_ text: String) -> UnsafeRawBufferPointer {
    let bytes = Array(text.utf8)
    let p = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 1)
    p.copyBytes(from: bytes)
    return UnsafeRawBufferPointer(p)
}

nonisolated(unsafe) private let markup = immortal(String(repeating: "<li class=\"message\"><span class=\"author\">static markup</span></li>\n", count: 40))
nonisolated(unsafe) private let shortStatic = immortal("<p>short static</p>")

@Suite struct GzipTests {
    /// A chain with every kind of link: owned runs, long and short immortal bytes, shared bytes.
    func sampleChain(shared: SharedBytes, owned: String) -> Chunks {
        var c = Chunks()
        c.append(unescaped: "<!doctype html><title>" + owned + "</title>")
        c.append(static: markup)
        c.append(static: shortStatic)
        c.append(shared: shared)
        c.append(shared: shared)  // the same fragment twice, back to back
        c.append(unescaped: owned + String(repeating: "x", count: 3000))
        c.append(static: markup)
        return c
    }

    @Test func splicedAnswerDecompressesToTheSameBytes() throws {
        let encoder = try #require(GzipEncoder())
        let fragment = Array(String(repeating: "<tr><td>shared fragment row</td></tr>", count: 100).utf8)
        let shared = fragment.withUnsafeBytes { SharedBytes(copying: $0) }
        for owned in ["first", "second <&> view", ""] {
            let chain = sampleChain(shared: shared, owned: owned)
            let gz = encoder.encode(chain).bytes
            #expect(gz.count < chain.count / 4, "compressed")
            let back = try #require(Gzip.decompress(gz))
            #expect(back == chain.bytes)
        }
        // The shared fragment was compressed once and kept with it.
        #expect(shared.attachment != nil)
    }

    @Test func answersEndingOrStartingWithAFragment() throws {
        let encoder = try #require(GzipEncoder())
        var onlyStatic = Chunks()
        onlyStatic.append(static: markup)
        #expect(Gzip.decompress(encoder.encode(onlyStatic).bytes) == onlyStatic.bytes)
        let empty = Chunks()
        #expect(Gzip.decompress(encoder.encode(empty).bytes) == [])
    }

    @Test func encoderIsReusedAcrossManyAnswers() throws {
        let encoder = try #require(GzipEncoder())
        var random = SystemRandomNumberGenerator()
        for i in 0..<200 {
            var c = Chunks()
            let n = Int.random(in: 0..<20_000, using: &random)
            let noise = (0..<n).map { _ in UInt8.random(in: 0...255, using: &random) }
            noise.withUnsafeBytes { c.append(copying: $0) }
            if i % 2 == 0 { c.append(static: markup) }
            #expect(Gzip.decompress(encoder.encode(c).bytes) == c.bytes)
        }
    }

    @Test func longStoredRunsAndShortRunsDeflated() throws {
        // 200 links of 600 bytes, none spliced (spliceMinimum 700): 120 KB of stored blocks,
        // more than one block's 65,535 bytes.
        var settings = GzipEncoder.Settings()
        settings.spliceMinimum = 700
        let stored = try #require(GzipEncoder(settings: settings))
        let piece = immortal(String(repeating: "0123456789", count: 60))
        var c = Chunks()
        for _ in 0..<200 { c.append(static: piece) }
        #expect(Gzip.decompress(stored.encode(c).bytes) == c.bytes, "stored blocks of 65,535 bytes and the rest")
        // Every run deflated (storeBelow 0): the same bytes back, and smaller.
        settings.storeBelow = 0
        let deflating = try #require(GzipEncoder(settings: settings))
        let small = deflating.encode(c).bytes
        #expect(Gzip.decompress(small) == c.bytes)
        #expect(small.count < stored.encode(c).count / 10)
        // A mix: a long owned run (deflated) then short ones (into the open stream), then a splice.
        var mixed = Chunks()
        mixed.append(unescaped: String(repeating: "long run ", count: 300))
        mixed.append(static: piece)
        mixed.append(static: markup)
        mixed.append(unescaped: "short")
        for e in [stored, deflating, try #require(GzipEncoder())] {
            #expect(Gzip.decompress(e.encode(mixed).bytes) == mixed.bytes)
        }
    }

    @Test func wholeBufferGzipAndBrotli() throws {
        let text = Array(String(repeating: "function f(x) { return x * 2; }\n", count: 200).utf8)
        let gz = text.withUnsafeBytes { Gzip.compress($0) }
        #expect(Gzip.decompress(gz) == text)
        let br = try #require(text.withUnsafeBytes { Brotli.compress($0) })
        #expect(Brotli.decompress(br) == text)
        #expect(br.count < gz.count)
        #expect(Gzip.decompress(Array(gz.dropLast(3))) == nil, "a truncated stream is refused")
        #expect(Brotli.decompress(Array(br.dropLast(2))) == nil)
        #expect(Gzip.decompress(gz, limit: 100) == nil, "a bomb is stopped at the limit")
    }

    @Test func acceptEncoding() {
        #expect(AcceptedCodings(acceptEncoding: "gzip, deflate, br") == AcceptedCodings(gzip: true, brotli: true))
        #expect(AcceptedCodings(acceptEncoding: "gzip;q=0, br") == AcceptedCodings(gzip: false, brotli: true))
        #expect(AcceptedCodings(acceptEncoding: "identity") == .none)
        #expect(AcceptedCodings(acceptEncoding: "*") == AcceptedCodings(gzip: true, brotli: true))
        #expect(AcceptedCodings(acceptEncoding: "*;q=0.1, br;q=0") == AcceptedCodings(gzip: true, brotli: false))
        #expect(AcceptedCodings(acceptEncoding: " GZIP ; Q=0.5 ") == AcceptedCodings(gzip: true))
        #expect(AcceptedCodings.isCompressible(contentType: "text/html; charset=utf-8"))
        #expect(AcceptedCodings.isCompressible(contentType: "application/javascript"))
        #expect(!AcceptedCodings.isCompressible(contentType: "text/event-stream"))
        #expect(!AcceptedCodings.isCompressible(contentType: "image/png"))
    }
}

