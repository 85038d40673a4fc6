import Glibc
import NeedletailBytes
import NeedletailHTTP

/// How the body of a request is delimited.
enum BodyFraming: Equatable {
    case none
    case length(Int)
    case chunked
}

/// A parsed request head: everything but the body.
struct HTTPRequestHead {
    var method: HTTPMethod
    var version: HTTPVersion
    /// Request line and header lines, copied out of the read buffer.
    var bytes: [UInt8]
    var target: Range<Int>
    /// The path as received, when it needs no decoding (no `%`); else `decodedPath` is set.
    var rawPath: Range<Int>
    var decodedPath: String?
    var query: Range<Int>
    var fields: Range<Int>
    var host: Range<Int>?
    /// Where the Referer and User-Agent values are (the access log's).
    var noted: HeaderFields.NotedFields
    var framing: BodyFraming
    var keepAlive: Bool
    var expectContinue: Bool
}

extension HTTPRequestHead {
    /// The `Request` a handler sees: its target, path, host, query and fields are ranges of the
    /// head's bytes (nothing is copied).
    consuming func request(body: [UInt8], trailers: [UInt8], remote: RemoteAddress, isSecure: Bool = false) -> Request {
        Request(
            method: method, version: version, storage: bytes,
            target: target, rawPath: rawPath, decodedPath: decodedPath, host: host,
            query: QueryParameters(storage: bytes, range: query),
            headers: HeaderFields(lines: bytes, range: fields, noted: noted),
            trailers: trailers.isEmpty ? .empty : HeaderFields(lines: trailers, range: 0..<trailers.count),
            body: body, remote: remote, isSecure: isSecure)
    }
}
