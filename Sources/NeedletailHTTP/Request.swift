import Glibc

/// A request as an app sees it, whichever way it came in (HTTP/1.1, FastCGI, CGI).
///
/// The request line and header bytes are kept in one array; the path is decoded once; the
/// target, host, query parameters and header values are decoded only when asked for.
public struct Request: Sendable {
    /// The method.
    public var method: HTTPMethod
    /// The protocol version the client spoke.
    public var version: HTTPVersion
    /// The query string, decoded on lookup: `request.query["name"]`.
    public var query: QueryParameters
    /// The request header fields.
    public var headers: HeaderFields
    /// Trailer fields of a chunked body (usually none).
    public var trailers: HeaderFields
    /// The request body, complete (bodies over the configured maximum never reach the app).
    public var body: [UInt8]
    /// The peer: the TCP client natively, REMOTE_ADDR behind a web server.
    public var remote: RemoteAddress
    /// Whether the request arrived over TLS (HTTPS=on behind a web server).
    public var isSecure: Bool

    /// Bytes that `target` and `host` are ranges of (the request head, as received).
    @usableFromInline let storage: [UInt8]
    @usableFromInline let targetRange: Range<Int>
    @usableFromInline let hostRange: Range<Int>?
    /// The path's bytes in `storage` when they need no decoding; else `decodedPath` holds it.
    @usableFromInline let pathRange: Range<Int>
    @usableFromInline let decodedPath: String?

    /// The head's bytes, for the codec to reuse for the connection's next head once the request
    /// is answered: unique (and reused in place) unless a handler kept the request.
    package consuming func takeStorage() -> [UInt8] { storage }

    /// The head's bytes without giving up the request (one reference more, not a copy of the
    /// request): reused once the request itself is gone.
    package var headBytes: [UInt8] { storage }

    /// The percent-decoded path, e.g. `/hello` (`*` for `OPTIONS *`).
    public var path: String {
        decodedPath ?? String(decoding: storage[pathRange], as: UTF8.self)
    }

    /// Calls `body` with the decoded path's UTF-8 bytes, without making a `String` when the path
    /// needed no decoding (routing uses this).
    @inlinable
    public func withPathBytes<R>(_ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        if var p = decodedPath { return p.withUTF8(body) }
        return storage.withUnsafeBufferPointer { body(UnsafeBufferPointer(rebasing: $0[pathRange])) }
    }

    /// The raw request target as sent (still percent-encoded), e.g. `/hello?name=x`.
    public var target: String { String(decoding: storage[targetRange], as: UTF8.self) }

    /// The raw target's bytes, read in place (the access log writes them without a String).
    package func withTargetBytes<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        storage.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[targetRange])) }
    }

    /// The host the request was for: the authority of an absolute-form target, else the Host
    /// field (port included, as sent).
    public var host: String? { hostRange.map { String(decoding: storage[$0], as: UTF8.self) } }

    /// The peer's address as text ("" when unknown or a unix socket).
    public var remoteAddress: String { remote.description }

    /// Parameters of an `application/x-www-form-urlencoded` body (empty for other bodies).
    public var form: QueryParameters {
        // No body, no form (and no scan of the header fields for every parameter of a GET).
        guard !body.isEmpty, let ct = headers["content-type"], ct.lowercased().hasPrefix("application/x-www-form-urlencoded") else {
            return .empty
        }
        return QueryParameters(storage: body, range: 0..<body.count)
    }
}

extension Request {
    /// A request whose target, path and host are ranges of `storage` (the codecs' initializer:
    /// no string is made unless asked for). `decodedPath` is given when the raw path had escapes.
    public init(
        method: HTTPMethod, version: HTTPVersion, storage: [UInt8], target: Range<Int>, rawPath: Range<Int>,
        decodedPath: String?, host: Range<Int>?,
        query: QueryParameters, headers: HeaderFields, trailers: HeaderFields = .empty, body: [UInt8] = [],
        remote: RemoteAddress = .unknown, isSecure: Bool = false
    ) {
        // Through the memberwise initialiser (the reason these are in an extension): one that
        // assigned the fields itself returned a copy of what it built, a retain and a release of
        // each part (docs/PERFORMANCE.md, "Response copies").
        self.init(
            method: method, version: version, query: query, headers: headers, trailers: trailers, body: body, remote: remote,
            isSecure: isSecure, storage: storage, targetRange: target, hostRange: host, pathRange: rawPath, decodedPath: decodedPath)
    }

    /// A request from plain values (tests, CGI).
    public init(
        method: HTTPMethod, version: HTTPVersion = .http1_1, path: String, query: QueryParameters = .empty,
        headers: HeaderFields = .empty, trailers: HeaderFields = .empty, body: [UInt8] = [],
        host: String? = nil, remote: RemoteAddress = .unknown, isSecure: Bool = false, target: String? = nil
    ) {
        var storage = Array((target ?? path).utf8)
        let targetRange = 0..<storage.count
        var hostRange: Range<Int>? = nil
        if let h = host {
            storage += h.utf8
            hostRange = targetRange.upperBound..<storage.count
        }
        self.init(
            method: method, version: version, storage: storage, target: targetRange, rawPath: 0..<0, decodedPath: path,
            host: hostRange, query: query, headers: headers, trailers: trailers, body: body, remote: remote, isSecure: isSecure)
    }
}
