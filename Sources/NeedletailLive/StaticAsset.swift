import NeedletailBytes
import NeedletailCompression
import NeedletailHTTP
import NeedletailPOSIX

/// Bytes served from memory with a content hash as ETag (304 on If-None-Match) and a long
/// cache lifetime: the client runtime, an app's style sheets. Pages refer to them with the
/// hash in the URL (`?v=...`), so a new version is fetched at once.
///
/// Compressed once, when made: gzip -9 and brotli 11, each kept only when it is smaller, and
/// sent to a client that accepts it (brotli first), with a distinct ETag per encoding and
/// `Vary: Accept-Encoding`, so that a compressed asset costs what an identity one does.
public struct StaticAsset: @unchecked Sendable {
    // Immortal (see `immortalCopy`): never written after init.
    let bytes: UnsafeRawBufferPointer
    let gzipBytes: UnsafeRawBufferPointer?
    let brotliBytes: UnsafeRawBufferPointer?
    /// The content hash (FNV-1a, 64 bits, hex).
    public let version: String
    public let type: String
    public let maxAge: Int

    public init(_ text: String, type: String, maxAge: Int = 31_536_000) {
        bytes = immortalCopy(of: text.utf8)
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in text.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        version = String(h, radix: 16)
        self.type = type
        self.maxAge = maxAge
        let compressible = AcceptedCodings.isCompressible(contentType: type)
        let original = bytes
        func smaller(_ encoded: [UInt8]?) -> UnsafeRawBufferPointer? {
            guard let e = encoded, e.count < original.count else { return nil }
            return immortalCopy(of: e)
        }
        gzipBytes = compressible ? smaller(Gzip.compress(bytes, level: 9)) : nil
        brotliBytes = compressible ? smaller(Brotli.compress(bytes, quality: 11)) : nil
    }

    /// The sizes served: identity, gzip and brotli (nil where not kept).
    public var sizes: (identity: Int, gzip: Int?, brotli: Int?) { (bytes.count, gzipBytes?.count, brotliBytes?.count) }

    /// The asset in the best encoding the client accepts, or 304 when the client has it.
    public func respond(to request: Request) -> Response {
        let accepted =
            (gzipBytes == nil && brotliBytes == nil)
            ? .none : (request.headers.firstValue("accept-encoding") { AcceptedCodings(acceptEncoding: $0) } ?? .none)
        let body: UnsafeRawBufferPointer
        let coding: String?
        if accepted.brotli, let br = brotliBytes {
            (body, coding) = (br, "br")
        } else if accepted.gzip, let gz = gzipBytes {
            (body, coding) = (gz, "gzip")
        } else {
            (body, coding) = (bytes, nil)
        }
        let etag = "\"" + version + (coding.map { "-" + $0 } ?? "") + "\""
        var headers: [(name: String, value: String)] = [
            ("ETag", etag), ("Cache-Control", "public, max-age=\(maxAge), immutable"), ("X-Content-Type-Options", "nosniff"),
        ]
        if gzipBytes != nil || brotliBytes != nil { headers.append(("Vary", "Accept-Encoding")) }
        if let inm = request.headers.combined("if-none-match"),
            inm.split(separator: ",").contains(where: { $0.drop(while: { $0 == " " }) == etag || $0 == "*" })
        {
            return Response(status: .notModified, headers: headers)
        }
        if let coding { headers.append(("Content-Encoding", coding)) }
        var chunks = Chunks()
        chunks.append(static: body)
        return Response(status: .ok, contentType: type, headers: headers, body: chunks)
    }
}
