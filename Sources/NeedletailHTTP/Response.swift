import NeedletailBytes

/// A response: status, a few header fields, and a body as a chunk chain.
///
/// The codec that sends it adds the framing (status line, Date, Content-Length, Connection for
/// HTTP; a `Status:` line and FastCGI records behind a web server).
public struct Response {
    /// The body's length: the file region's when there is one.
    public var bodyCount: Int { file?.count ?? body.count }

    /// For codecs that cannot send a file by descriptor: the file region read into `body`.
    /// A file that can no longer be read gives a 500 (logged by the caller through `false`).
    public mutating func loadFileBody() -> Bool {
        guard let f = file else { return true }
        file = nil
        if let c = f.read() {
            body = c
            return true
        }
        self = Router.errorPage(.internalServerError, detail: "The file could not be read.")
        return false
    }

    /// The status.
    public var status: HTTPStatus
    /// The Content-Type field value, if any.
    public var contentType: String?
    /// Other header fields, in order. Names and values must not contain CR or LF; a field that
    /// does is dropped when the response is written (and logged), never sent.
    public var headers: [(name: String, value: String)]
    /// The body (not sent for HEAD, 204 and 304, but its length still is for HEAD).
    public var body: Chunks
    /// When set, the body is this part of a file instead (static files): sent with sendfile(2)
    /// by the native server, read into records by FastCGI and CGI. `body` is ignored.
    public var file: FileRegion?
    /// When set, the body is produced over time instead (see `Response.streaming`) and `body`
    /// is ignored.
    public var stream: (@Sendable (ResponseStream) -> Void)?

    public init(status: HTTPStatus = .ok, contentType: String? = nil, headers: [(name: String, value: String)] = [], body: Chunks = Chunks()) {
        self.status = status
        self.contentType = contentType
        self.headers = headers
        self.body = body
    }

    /// `text/html; charset=utf-8`.
    public static let htmlType = "text/html; charset=utf-8"
    /// `text/plain; charset=utf-8`.
    public static let textType = "text/plain; charset=utf-8"

    /// An HTML page.
    public static func html(_ body: Chunks, status: HTTPStatus = .ok) -> Response {
        Response(status: status, contentType: htmlType, body: body)
    }

    /// A plain-text response.
    public static func text(_ text: String, status: HTTPStatus = .ok) -> Response {
        var body = Chunks()
        body.append(unescaped: text)
        return Response(status: status, contentType: textType, body: body)
    }

    /// A redirect to `location` (303 See Other by default: the POST-redirect-GET answer).
    public static func redirect(to location: String, status: HTTPStatus = .seeOther) -> Response {
        Response(status: status, headers: [("Location", location)])
    }

    /// Adds a header field.
    public mutating func addHeader(_ name: String, _ value: String) {
        headers.append((name, value))
    }
}

import NeedletailHTML

extension Response {
    /// An HTML page rendered from the DSL: `.html(Html { ... })`.
    @inlinable
    public static func html(_ content: some HTMLContent, status: HTTPStatus = .ok) -> Response {
        Response(status: status, contentType: htmlType, body: content.render())
    }
}
