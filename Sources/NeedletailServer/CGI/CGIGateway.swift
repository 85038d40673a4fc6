import Glibc
import NeedletailBytes
import NeedletailHTTP

/// What FastCGI and plain CGI share: turning CGI/1.1 variables into a `Request`, and a
/// `Response` into CGI response headers.
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
    ///
    /// The request keeps `params.bytes` (with the header lines appended) as its storage: the
    /// target, path, host, query and header values are ranges of it.
    public static func request(from params: consuming CGIParams, body: [UInt8]) throws(Refusal) -> Request {
        var storage = params.bytes
        let pairs = params.pairs
        var method: Range<Int>?, requestURI: Range<Int>?, queryString: Range<Int>?, host: Range<Int>?
        var scriptName = 0..<0, pathInfo = 0..<0, remote = 0..<0
        var http10 = false, secure = false
        let headersStart = storage.count
        // Values are copied from `source` (the params as received), never from a slice of
        // `storage` itself: appending that would copy the whole array on every field.
        let source = params.bytes
        storage.reserveCapacity(storage.count * 2)
        func appendField(_ name: (inout [UInt8]) -> Void, value: Range<Int>) {
            name(&storage)
            storage.append(UInt8(ascii: ":"))
            storage.append(32)
            source.withUnsafeBufferPointer { storage.append(contentsOf: UnsafeBufferPointer(rebasing: $0[value])) }
            storage.append(13)
            storage.append(10)
        }
        for (n, v) in pairs {
            let first = n.isEmpty ? 0 : params.bytes[n.lowerBound]
            if first == UInt8(ascii: "H") && n.count > 5 && params.equals(n.lowerBound..<(n.lowerBound + 5), "HTTP_") {
                if params.equals(n, "HTTP_HOST") && host == nil { host = v }
                appendField(
                    { out in
                        // HTTP_X_FORWARDED_FOR → X-Forwarded-For, written into place in one pass.
                        let start = out.count, count = n.count - 5
                        out.append(contentsOf: repeatElement(0, count: count))
                        source.withUnsafeBufferPointer { src in
                            out.withUnsafeMutableBufferPointer { dst in
                                var upper = true
                                for k in 0..<count {
                                    let b = src[n.lowerBound + 5 + k]
                                    if b == UInt8(ascii: "_") {
                                        dst[start + k] = UInt8(ascii: "-")
                                        upper = true
                                    } else {
                                        dst[start + k] = upper ? b : (b >= 65 && b <= 90 ? b | 0x20 : b)
                                        upper = false
                                    }
                                }
                            }
                        }
                    }, value: v)
                continue
            }
            switch n.count {
            case 5 where params.equals(n, "HTTPS"):
                secure = secure || params.equals(v, "on") || params.equals(v, "ON") || params.equals(v, "1")
            case 9 where params.equals(n, "PATH_INFO"): pathInfo = v
            case 11 where params.equals(n, "REQUEST_URI"): requestURI = v
            case 11 where params.equals(n, "SCRIPT_NAME"): scriptName = v
            case 11 where params.equals(n, "REMOTE_ADDR"): remote = v
            case 12 where params.equals(n, "QUERY_STRING"): queryString = v
            case 12 where params.equals(n, "CONTENT_TYPE"):
                if !v.isEmpty { appendField({ $0 += "Content-Type".utf8 }, value: v) }
            case 14 where params.equals(n, "REQUEST_METHOD"): method = v
            case 14 where params.equals(n, "CONTENT_LENGTH"):
                if !v.isEmpty { appendField({ $0 += "Content-Length".utf8 }, value: v) }
            case 14 where params.equals(n, "REQUEST_SCHEME"):
                secure = secure || params.equals(v, "https")
            case 15 where params.equals(n, "SERVER_PROTOCOL"): http10 = params.equals(v, "HTTP/1.0")
            default: break
            }
        }
        let headerLines = headersStart..<storage.count
        guard let m = method, !m.isEmpty else { throw Refusal(status: .badRequest, reason: "no REQUEST_METHOD") }
        let httpMethod: HTTPMethod
        switch storage.withUnsafeBytes({ HTTPMethod.parse(UnsafeRawBufferPointer(rebasing: $0[m])) }) {
        case .method(let method): httpMethod = method
        case .unsupported: throw Refusal(status: .notImplemented, reason: "method not supported")
        case .notAToken: throw Refusal(status: .badRequest, reason: "method is not a token")
        }

        // Target, path and query: REQUEST_URI as the client sent it, else SCRIPT_NAME and
        // PATH_INFO (already decoded, RFC 3875 4.1.5 and 4.1.13: encoded again here).
        let uri: Range<Int>
        if let given = requestURI, !given.isEmpty {
            uri = given
        } else {
            let decoded = String(decoding: storage[scriptName], as: UTF8.self) + String(decoding: storage[pathInfo], as: UTF8.self)
            let start = storage.count
            storage += encodePath(decoded.isEmpty ? "/" : decoded).utf8
            uri = start..<storage.count
        }
        var parsed: RequestTarget
        do throws(RequestTarget.Refusal) {
            // With QUERY_STRING the query is that variable's; REQUEST_URI gives the path only.
            var pathAndQuery = uri
            if queryString != nil, let q = storage[uri].firstIndex(of: UInt8(ascii: "?")) { pathAndQuery = uri.lowerBound..<q }
            parsed = try storage.withUnsafeBufferPointer { buffer throws(RequestTarget.Refusal) in
                try RequestTarget.parse(buffer, pathAndQuery)
            }
            if let qs = queryString {
                guard storage.withUnsafeBufferPointer({ PercentDecoding.isValid(UnsafeBufferPointer(rebasing: $0[qs])) }) else {
                    throw RequestTarget.Refusal(reason: "invalid percent-encoding in query")
                }
                parsed.query = qs
            }
        } catch {
            throw Refusal(status: .badRequest, reason: error.reason)
        }
        if parsed.rawPath.isEmpty {
            let start = storage.count
            storage.append(UInt8(ascii: "/"))
            parsed.rawPath = start..<storage.count
        }
        let target = uri
        return Request(
            method: httpMethod, version: http10 ? .http1_0 : .http1_1, storage: storage, target: target,
            rawPath: parsed.rawPath, decodedPath: parsed.decodedPath, host: host,
            query: QueryParameters(storage: storage, range: parsed.query),
            headers: HeaderFields(lines: storage, range: headerLines), body: body,
            remote: remote.isEmpty ? .unknown : .text(String(decoding: storage[remote], as: UTF8.self)),
            isSecure: secure)
    }

    /// `request(from:body:)` for name-value strings.
    public static func request(from list: [(name: String, value: String)], body: [UInt8]) throws(Refusal) -> Request {
        try request(from: CGIParams(list), body: body)
    }

    /// Re-encodes a decoded path so that it can be decoded again (`%` and bytes outside
    /// visible ASCII).
    static func encodePath(_ path: String) -> String {
        PercentEncoding.encoded(path) { b in
            b > 32 && b < 127 && b != UInt8(ascii: "%") && b != UInt8(ascii: "?") && b != UInt8(ascii: "#")
        }
    }

    /// Appends CGI response headers: `Status` with its reason phrase (nginx copies it as is),
    /// Content-Type, Content-Length when known, the app's fields and `extra` (unsafe ones
    /// dropped), the response's fixed fields, the defaults neither overrides, and the blank line.
    public static func encodeHead(
        _ response: Response, contentLength: Int?, extra: [(name: String, value: String)] = [],
        defaults: DefaultFields = .standard, into out: ByteBuffer, dropped: (String) -> Void
    ) {
        let status = response.status
        out.append("Status: ")
        out.appendDecimal(status.code)
        out.append(32)
        if HTTPResponseEncoder.isSafe(value: status.reason) {
            out.append(string: status.reason)
        } else {
            out.append(string: HTTPStatus.standardReason(status.code))
        }
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
        HTTPResponseEncoder.appendFields(response.headers, into: out, dropped: dropped)
        HTTPResponseEncoder.appendFields(extra, into: out, dropped: dropped)
        defaults.append(to: out, unlessSetIn: response.headers, after: response.fixedFields)
        out.append("\r\n")
    }

    /// A plain-text refusal as a response.
    public static func refusalResponse(_ r: Refusal) -> Response {
        var body = Chunks()
        body.append(unescaped: "\(r.status.code) \(r.status.reason): \(r.reason)\n")
        return Response(status: r.status, contentType: Response.textType, body: body)
    }
}
