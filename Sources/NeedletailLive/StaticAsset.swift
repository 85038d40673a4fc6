import NeedletailPOSIX
import NeedletailBytes
import NeedletailHTTP

/// Bytes served from memory with a content hash as ETag (304 on If-None-Match) and a long
/// cache lifetime: the client runtime, an app's style sheets. Pages refer to them with the
/// hash in the URL (`?v=...`), so a new version is fetched at once.
public struct StaticAsset: @unchecked Sendable {
    // Immortal (see `immortalCopy`): never written after init.
    let bytes: UnsafeRawBufferPointer
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
    }

    /// The asset, or 304 when the client has this version.
    public func respond(to request: Request) -> Response {
        let etag = "\"" + version + "\""
        let headers: [(name: String, value: String)] = [
            ("ETag", etag), ("Cache-Control", "public, max-age=\(maxAge), immutable"), ("X-Content-Type-Options", "nosniff"),
        ]
        if let inm = request.headers["if-none-match"], inm.split(separator: ",").contains(where: { $0.drop(while: { $0 == " " }) == etag })
        {
            return Response(status: .notModified, headers: headers)
        }
        var body = Chunks()
        body.append(static: bytes)
        return Response(status: .ok, contentType: type, headers: headers, body: body)
    }
}
