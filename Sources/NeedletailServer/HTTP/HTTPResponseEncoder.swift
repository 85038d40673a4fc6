import NeedletailBytes
import NeedletailHTTP

/// Writes a `Response` as HTTP/1.1 bytes: status line, Date, Content-Type, Content-Length,
/// the app's fields, Connection when needed, then the body unless the request was HEAD.
enum HTTPResponseEncoder {
    /// A common code's status line, encoded once, and the reason phrase it was made with.
    struct StatusLine {
        let bytes: [UInt8]
        let reason: String
    }

    /// Status lines of the common codes, encoded once.
    static let statusLines: [StatusLine?] = {
        var table: [StatusLine?] = Array(repeating: nil, count: 600)
        for code in [
            100, 200, 201, 202, 204, 206, 301, 302, 303, 304, 307, 308, 400, 401, 403, 404, 405, 408, 409, 410,
            411, 413, 414, 415, 416, 417, 422, 429, 431, 500, 501, 502, 503, 504, 505,
        ] {
            let status = HTTPStatus(code: code)
            table[code] = StatusLine(bytes: Array("HTTP/1.1 \(status.description)\r\n".utf8), reason: status.reason)
        }
        return table
    }()

    /// Whether a header name or value is safe to put on the wire (no CR, LF or NUL; names are tokens).
    @inline(__always)
    static func isSafe(name: String, value: String) -> Bool { FieldCheck.isSafe(name: name, value: value) }

    /// Appends `name: value` lines (HTTP and CGI heads alike), leaving out and reporting any
    /// field whose name is not a token or whose value holds CR, LF or NUL.
    static func appendFields(_ fields: [(name: String, value: String)], into out: ByteBuffer, dropped: (String) -> Void) {
        for (name, value) in fields {
            guard isSafe(name: name, value: value) else {
                dropped(name)
                continue
            }
            out.append(string: name)
            out.append(": ")
            out.append(string: value)
            out.append("\r\n")
        }
    }

    /// Whether a field value is free of CR, LF and NUL.
    @inline(__always)
    static func isSafe(value: String) -> Bool { FieldCheck.isSafe(value: value) }

    /// How the body that follows the head is delimited.
    enum Framing: Equatable {
        /// No body at all (1xx, 204, 304).
        case none
        case length(Int)
        case chunked
        /// Raw bytes ended by closing the connection (a stream to an HTTP/1.0 client).
        case untilClose
    }

    /// Appends the head of `response` to `out`.
    /// `dropped` is called with the name of each unsafe field left out.
    static func encodeHead(
        _ response: Response, framing: Framing, keepAlive: Bool, version: HTTPVersion,
        date: [UInt8], defaults: DefaultFields = .standard, coding: StaticString? = nil, into out: ByteBuffer,
        dropped: (String) -> Void
    ) {
        let code = response.status.code
        if code >= 100 && code < 600, let line = statusLines[code], response.status.reason == line.reason {
            line.bytes.withUnsafeBytes { out.append($0) }
        } else {
            out.append("HTTP/1.1 ")
            out.appendDecimal(code)
            out.append(32)
            out.append(string: response.status.reason.filter { $0 != "\r" && $0 != "\n" })
            out.append("\r\n")
        }
        date.withUnsafeBytes { out.append($0) }
        if let ct = response.contentType {
            if ct == Response.htmlType {
                // The usual one, known safe: one append (`==` on the same literal is immediate).
                out.append("Content-Type: text/html; charset=utf-8\r\n")
            } else if isSafe(value: ct) {
                out.append("Content-Type: ")
                out.append(string: ct)
                out.append("\r\n")
            } else {
                dropped("Content-Type")
            }
        }
        switch framing {
        case .length(let n):
            out.append("Content-Length: ")
            out.appendDecimal(n)
            out.append("\r\n")
        case .chunked:
            out.append("Transfer-Encoding: chunked\r\n")
        case .none, .untilClose:
            break
        }
        if !response.headers.isEmpty { appendFields(response.headers, into: out, dropped: dropped) }
        // Vary and Content-Encoding from compression: whole lines, known safe.
        if let coding { out.append(coding) }
        defaults.append(to: out, unlessSetIn: response.headers, after: response.fixedFields)
        if !keepAlive {
            out.append("Connection: close\r\n")
        } else if version.minor == 0 {
            out.append("Connection: keep-alive\r\n")
        }
        out.append("\r\n")
    }
}
