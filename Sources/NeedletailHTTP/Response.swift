import NeedletailBytes

/// A response: status, a few header fields, and a body as a chunk chain.
///
/// The codec that sends it adds the framing (status line, Date, Content-Length, Connection for
/// HTTP; a `Status:` line and FastCGI records behind a web server).
public struct Response {
    /// What a response carries: bytes now, part of a file, or bytes produced over time.
    public enum Body {
        /// A chunk chain (pages, text): its length is known.
        case chunks(Chunks)
        /// Part of a file (static files): sent with sendfile(2) by the native server, read into
        /// records by FastCGI and CGI.
        case file(FileRegion)
        /// Bytes written over time through a `ResponseStream` (see `Response.streaming`).
        case stream(@Sendable (ResponseStream) -> Void)
        /// Not made yet: an async handler will make the whole response (status and fields
        /// too: this value's own are unused). The codecs run it as a task on their loop; the
        /// blocking ways in wait for it (`Response.waited()`).
        case pending(PendingReply)

        /// The length, when it is known before sending (not for a stream).
        public var count: Int? {
            switch self {
            case .chunks(let c): return c.count
            case .file(let f): return f.count
            case .stream, .pending: return nil
            }
        }

        /// The chunk chain, for a body that is one.
        public var chunks: Chunks? {
            if case .chunks(let c) = self { return c }
            return nil
        }

        /// The producer, for a streamed body.
        public var stream: (@Sendable (ResponseStream) -> Void)? {
            if case .stream(let produce) = self { return produce }
            return nil
        }

        /// A chunk body's bytes as text; "" for a file or a stream (tests, logs).
        public var string: String {
            if case .chunks(let c) = self { return c.string }
            return ""
        }
    }

    /// The body's length, when known (0 for a stream, whose length is not).
    public var bodyCount: Int { body.count ?? 0 }

    /// For codecs that cannot send a file by descriptor: the file region read into chunks.
    /// A file that can no longer be read gives a 500 (logged by the caller through `false`).
    public mutating func loadFileBody() -> Bool {
        guard case .file(let f) = body else { return true }
        if let c = f.read() {
            body = .chunks(c)
            return true
        }
        self = Router.errorPage(.internalServerError, detail: "The file could not be read.")
        return false
    }

    /// The body, moved out of the response (which keeps an empty chunk body): what a codec
    /// switches on once. Copying it out and then assigning an empty one retained and released
    /// its payload (~200 instructions per hello; docs/PERFORMANCE.md).
    @inlinable @inline(__always)
    public mutating func takeBody() -> Body {
        var taken = Body.chunks(Chunks())
        swap(&taken, &body)
        return taken
    }

    /// Gives a chunk body's buffer back to this thread's pool once the codec has copied it
    /// (the body is empty afterwards).
    @inline(__always)
    public mutating func recycleBody() {
        guard case .chunks(var c) = body else { return }
        body = .chunks(Chunks())
        c.recycle()
    }

    /// The status.
    public var status: HTTPStatus
    /// The Content-Type field value, if any.
    public var contentType: String?
    /// Other header fields, in order. Names and values must not contain CR or LF; a field that
    /// does is dropped when the response is written (and logged), never sent.
    public var headers: [(name: String, value: String)]
    /// Fields shared with other answers, checked and encoded once (a live page's policy):
    /// sent after `headers`. `allHeaders` lists both.
    public var fixedFields: FixedFields? = nil
    /// The body (not sent for HEAD, 204 and 304, but its length still is for HEAD).
    public var body: Body
    /// The route that made it (the router's pattern, e.g. `/board`), set by `Router`: what
    /// the metrics count requests by. Nil for answers no route made (not found, the codecs' own).
    public var route: String? = nil

    /// `text/html; charset=utf-8`.
    @inlinable public static var htmlType: String { "text/html; charset=utf-8" }
    /// `text/plain; charset=utf-8`.
    @inlinable public static var textType: String { "text/plain; charset=utf-8" }

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

extension Response {
    public init(
        status: HTTPStatus = .ok, contentType: String? = nil, headers: [(name: String, value: String)] = [], body: Chunks = Chunks()
    ) {
        self.init(status: status, contentType: contentType, headers: headers, body: .chunks(body))
    }

    public init(status: HTTPStatus = .ok, contentType: String? = nil, headers: [(name: String, value: String)] = [], body: Body) {
        // Through the memberwise initialiser (the reason these are in an extension): one that
        // assigned the fields itself built the answer on the stack, then copied it out and
        // destroyed the original, a retain and a release of every field (~400 instructions per
        // hello; docs/PERFORMANCE.md, "Response copies").
        self.init(status: status, contentType: contentType, headers: headers, fixedFields: nil, body: body, route: nil)
    }
}

import NeedletailHTML

extension Response {
    /// An HTML page rendered from the DSL: `.html(Html { ... })`.
    @inlinable @inline(__always)
    public static func html(_ content: some HTMLContent, status: HTTPStatus = .ok) -> Response {
        Response(status: status, contentType: htmlType, body: .chunks(content.render()))
    }
}
