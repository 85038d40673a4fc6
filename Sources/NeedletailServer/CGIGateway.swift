import NeedletailBytes
import NeedletailWeb

/// What FastCGI and plain CGI share: turning CGI/1.1 variables (RFC 3875) into a `Request`,
/// and a `Response` into CGI response headers.
public enum CGIGateway {
    /// Why variables could not become a request; answered as a CGI response, never a crash.
    public struct Refusal: Error, CustomStringConvertible {
        public let status: HTTPStatus
        public let reason: String
        public init(status: HTTPStatus, reason: String) { self.status = status; self.reason = reason }
        public var description: String { "\(status.code) \(reason)" }
    }

    /// Builds the request that the native codec would have made for the same client request.
    ///
    /// - REQUEST_METHOD, REQUEST_URI (path and query as the client sent them; without it
    ///   SCRIPT_NAME + PATH_INFO and QUERY_STRING), QUERY_STRING, SERVER_PROTOCOL;
    /// - HTTP_* become header fields (HTTP_USER_AGENT → User-Agent), repeated names kept in order;
    ///   CONTENT_TYPE and a non-empty CONTENT_LENGTH become Content-Type and Content-Length;
    /// - HTTP_HOST (with or without a port) is the host; REMOTE_ADDR the peer; HTTPS=on (or
    ///   REQUEST_SCHEME=https) marks the request secure.
    public static func request(from params: [(name: String, value: String)], body: [UInt8]) throws(Refusal) -> Request {
        var method: String?
        var requestURI: String?
        var scriptName = ""
        var pathInfo = ""
        var queryString: String?
        var serverProtocol = "HTTP/1.1"
        var remote = ""
        var secure = false
        var host: String?
        var fields: [(String, String)] = []
        for (name, value) in params {
            switch name {
            case "REQUEST_METHOD": method = value
            case "REQUEST_URI": requestURI = value
            case "SCRIPT_NAME": scriptName = value
            case "PATH_INFO": pathInfo = value
            case "QUERY_STRING": queryString = value
            case "SERVER_PROTOCOL": serverProtocol = value
            case "REMOTE_ADDR": remote = value
            case "HTTPS": secure = secure || value.lowercased() == "on" || value == "1"
            case "REQUEST_SCHEME": secure = secure || value.lowercased() == "https"
            case "CONTENT_TYPE": if !value.isEmpty { fields.append(("Content-Type", value)) }
            case "CONTENT_LENGTH": if !value.isEmpty { fields.append(("Content-Length", value)) }
            default:
                if name.hasPrefix("HTTP_") {
                    let header = headerName(fromParam: name)
                    fields.append((header, value))
                    if name == "HTTP_HOST" && host == nil { host = value }
                }
            }
        }
        guard let m = method, !m.isEmpty else { throw Refusal(status: .badRequest, reason: "no REQUEST_METHOD") }
        guard let httpMethod = HTTPMethod(rawValue: m) else {
            throw Refusal(status: .notImplemented, reason: "method not supported")
        }
        let target: String
        let rawPath: String
        var query: String
        if let uri = requestURI, !uri.isEmpty {
            target = uri
            if let q = uri.firstIndex(of: "?") {
                rawPath = String(uri[..<q])
                query = String(uri[uri.index(after: q)...])
            } else {
                rawPath = uri
                query = ""
            }
            if let qs = queryString { query = qs }
        } else {
            // SCRIPT_NAME and PATH_INFO are already decoded (RFC 3875 4.1.5, 4.1.13).
            rawPath = encodePath(scriptName + pathInfo)
            query = queryString ?? ""
            target = query.isEmpty ? rawPath : rawPath + "?" + query
        }
        guard let path = PercentDecoding.decodePathString(rawPath.isEmpty ? "/" : rawPath) else {
            throw Refusal(status: .badRequest, reason: "invalid percent-encoding, NUL or non-UTF-8 in path")
        }
        var queryCheck = Array(query.utf8)
        guard queryCheck.withUnsafeMutableBufferPointer({ PercentDecoding.isValid(UnsafeBufferPointer($0)) }) else {
            throw Refusal(status: .badRequest, reason: "invalid percent-encoding in query")
        }
        let version: HTTPVersion = serverProtocol == "HTTP/1.0" ? .http1_0 : .http1_1
        return Request(method: httpMethod, version: version, path: path, query: QueryParameters(query),
                       headers: HeaderFields(fields), body: body, host: host,
                       remote: remote.isEmpty ? .unknown : .text(remote), isSecure: secure, target: target)
    }

    /// `HTTP_X_FORWARDED_FOR` → `X-Forwarded-For`.
    static func headerName(fromParam name: String) -> String {
        var out = ""
        var upper = true
        for ch in name.dropFirst(5) {
            if ch == "_" {
                out.append("-")
                upper = true
            } else {
                out.append(upper ? Character(ch.uppercased()) : Character(ch.lowercased()))
                upper = false
            }
        }
        return out
    }

    /// Re-encodes a decoded path so that it can be decoded again (`%` and bytes outside
    /// visible ASCII).
    static func encodePath(_ path: String) -> String {
        var out = ""
        for b in path.utf8 {
            if b > 32 && b < 127 && b != UInt8(ascii: "%") && b != UInt8(ascii: "?") && b != UInt8(ascii: "#") {
                out.unicodeScalars.append(Unicode.Scalar(b))
            } else {
                let hex = Array("0123456789ABCDEF".utf8)
                out += "%" + String(decoding: [hex[Int(b >> 4)], hex[Int(b & 15)]], as: UTF8.self)
            }
        }
        return out
    }

    /// Appends CGI response headers: `Status` with its reason phrase (nginx copies it as is),
    /// Content-Type, Content-Length when known, the app's fields (unsafe ones dropped), and the
    /// blank line.
    public static func encodeHead(_ response: Response, contentLength: Int?, extra: [(String, String)] = [], into out: ByteBuffer,
                           dropped: (String) -> Void) {
        let status = response.status
        out.append("Status: ")
        out.appendDecimal(status.code)
        out.append(32)
        out.append(string: status.reason.filter { $0 != "\r" && $0 != "\n" })
        out.append("\r\n")
        if let ct = response.contentType {
            if HTTPResponseEncoder.isSafe(value: ct) {
                out.append("Content-Type: ")
                out.append(string: ct)
                out.append("\r\n")
            } else {
                dropped("Content-Type")
            }
        }
        if let n = contentLength {
            out.append("Content-Length: ")
            out.appendDecimal(n)
            out.append("\r\n")
        }
        for (name, value) in response.headers + extra.map({ (name: $0.0, value: $0.1) }) {
            guard HTTPResponseEncoder.isSafe(name: name, value: value) else {
                dropped(name)
                continue
            }
            out.append(string: name)
            out.append(": ")
            out.append(string: value)
            out.append("\r\n")
        }
        out.append("\r\n")
    }

    /// A plain-text refusal as a response.
    public static func refusalResponse(_ r: Refusal) -> Response {
        var body = Chunks()
        body.append(unescaped: "\(r.status.code) \(r.status.reason): \(r.reason)\n")
        return Response(status: r.status, contentType: Response.textType, body: body)
    }
}
