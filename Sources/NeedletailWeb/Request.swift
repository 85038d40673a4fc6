/// A request as an app sees it, whichever way it came in (HTTP/1.1, FastCGI, CGI).
///
/// The request line and header bytes are kept in one array; the path is decoded once, query
/// parameters and header values are decoded only when asked for.
public struct Request: Sendable {
    /// The method.
    public var method: HTTPMethod
    /// The protocol version the client spoke.
    public var version: HTTPVersion
    /// The percent-decoded path, e.g. `/hello` (`*` for `OPTIONS *`).
    public var path: String
    /// The query string, decoded on lookup: `request.query["name"]`.
    public var query: QueryParameters
    /// The request header fields.
    public var headers: HeaderFields
    /// Trailer fields of a chunked body (usually none).
    public var trailers: HeaderFields
    /// The request body, complete (bodies over the configured maximum never reach the app).
    public var body: [UInt8]
    /// The host the request was for: the authority of an absolute-form target, else the Host
    /// field (port included, as sent).
    public var host: String?
    /// The peer's address: the TCP client natively, REMOTE_ADDR behind a web server.
    public var remoteAddress: String
    /// Whether the request arrived over TLS (HTTPS=on behind a web server).
    public var isSecure: Bool
    /// The raw request target as sent (still percent-encoded).
    public var target: String

    public init(method: HTTPMethod, version: HTTPVersion = .http1_1, path: String, query: QueryParameters = .empty,
                headers: HeaderFields = .empty, trailers: HeaderFields = .empty, body: [UInt8] = [],
                host: String? = nil, remoteAddress: String = "", isSecure: Bool = false, target: String? = nil) {
        self.method = method
        self.version = version
        self.path = path
        self.query = query
        self.headers = headers
        self.trailers = trailers
        self.body = body
        self.host = host
        self.remoteAddress = remoteAddress
        self.isSecure = isSecure
        self.target = target ?? path
    }

    /// Parameters of an `application/x-www-form-urlencoded` body (empty for other bodies).
    public var form: QueryParameters {
        guard let ct = headers["content-type"], ct.lowercased().hasPrefix("application/x-www-form-urlencoded") else {
            return .empty
        }
        return QueryParameters(storage: body, range: 0..<body.count)
    }
}
