import NeedletailBytes
import NeedletailCompression
import NeedletailHTTP

/// Gzip for native answers (behind a web server, the web server compresses).
public struct CompressionSettings: Sendable {
    /// Bodies shorter than this go out as they are (a few hundred bytes gain nothing and cost a
    /// deflate stream's flush). nginx's `gzip_min_length` is 20; browsers' own guidance is ~1 KB.
    public var minimumLength = 1024
    /// Levels and the splice threshold of the per-loop encoder.
    public var gzip = GzipEncoder.Settings()
    public init() {}
}

extension LoopContext {
    /// Compresses a chunk body with gzip when the client accepts it, the type gains from it,
    /// the body is long enough and the app did not encode it itself. Returns the fields the
    /// head then carries, already encoded: `Vary: Accept-Encoding` on every answer that could
    /// have been compressed, and `Content-Encoding: gzip` when it was, whose ETag is then
    /// weakened (as nginx does: the bytes differ from the identity ones).
    @inline(__always)
    func compress(_ response: inout Response, _ chunks: inout Chunks, requestHeaders: HeaderFields) -> StaticString? {
        guard let settings = compression, chunks.count >= settings.minimumLength, let type = response.contentType,
            response.status.code != 206, !response.status.forbidsBody
        else { return nil }
        guard type == Response.htmlType || AcceptedCodings.isCompressible(contentType: type) else { return nil }
        if let fixed = response.fixedFields, fixed.concernsEncoding { response.unfixFields() }
        var vary = true
        for (name, value) in response.headers {
            if name.utf8.count == 16 && asciiEquals(name, "content-encoding") { return nil }
            if name.utf8.count == 4 && asciiEquals(name, "vary") {
                vary = false
                if !value.lowercased().contains("accept-encoding") { return nil }  // the app varies on something else: leave it
            }
        }
        let accepted = requestHeaders.firstAcceptEncoding { AcceptedCodings(acceptEncoding: $0) } ?? .none
        guard accepted.gzip, let encoder = gzip else { return vary ? "Vary: Accept-Encoding\r\n" : nil }
        let encoded = encoder.encode(chunks)
        chunks.recycle()
        chunks = encoded
        for i in response.headers.indices where asciiEquals(response.headers[i].name, "etag") {
            let tag = response.headers[i].value
            if !tag.hasPrefix("W/") { response.headers[i].value = "W/" + tag }
        }
        return vary ? "Vary: Accept-Encoding\r\nContent-Encoding: gzip\r\n" : "Content-Encoding: gzip\r\n"
    }
}

/// ASCII case-insensitive equality with a lowercase name (response field names: the
/// compression check, and which default fields an answer overrides).
func asciiEquals(_ s: String, _ lowercase: StaticString) -> Bool {
    asciiEquals(s, UnsafeBufferPointer(start: lowercase.utf8Start, count: lowercase.utf8CodeUnitCount))
}

/// ASCII case-insensitive equality with the bytes of a lowercase name.
func asciiEquals(_ s: String, _ lowercase: UnsafeBufferPointer<UInt8>) -> Bool {
    return s.withUTF8Bytes { a in
        guard a.count == lowercase.count else { return false }
        for i in 0..<a.count where (a[i] >= 65 && a[i] <= 90 ? a[i] | 0x20 : a[i]) != lowercase[i] { return false }
        return true
    }
}
