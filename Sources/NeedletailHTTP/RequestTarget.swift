/// The path and query of a request target, as every way in reads them (the HTTP codec from the
/// request line, FastCGI and CGI from REQUEST_URI): ranges of the bytes the request keeps, the
/// path decoded only when it holds escapes.
package struct RequestTarget: Equatable {
    /// The path's bytes as sent (still percent-encoded when `decodedPath` is set).
    package var rawPath: Range<Int>
    /// The query after `?` (empty when there is none).
    package var query: Range<Int>
    /// The path percent-decoded, when it needed decoding.
    package var decodedPath: String?

    package init(rawPath: Range<Int>, query: Range<Int>, decodedPath: String?) {
        (self.rawPath, self.query, self.decodedPath) = (rawPath, query, decodedPath)
    }

    /// Why a target is refused: the text of the 400 answer.
    package struct Refusal: Error, Equatable {
        package let reason: String
        package init(reason: String) { self.reason = reason }
    }

    /// Splits `bytes[range]`, a path with an optional `?query`, checking both: the path's
    /// escapes must decode to UTF-8 without NUL, the query's escapes must be well formed.
    @inline(__always)
    package static func parse(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) throws(Refusal) -> RequestTarget {
        var q = range.lowerBound
        var escaped = false
        while q < range.upperBound {
            let b = bytes[q]
            if b == UInt8(ascii: "?") { break }
            // A byte outside visible ASCII only reaches here from a CGI variable (the HTTP codec
            // refuses such targets first); decoding re-checks it as UTF-8.
            if b == UInt8(ascii: "%") || b <= 32 || b >= 127 { escaped = true }
            q += 1
        }
        let path = range.lowerBound..<q
        let query = q < range.upperBound ? (q + 1)..<range.upperBound : range.upperBound..<range.upperBound
        var decoded: String? = nil
        if escaped {
            guard let p = PercentDecoding.decodePath(UnsafeBufferPointer(rebasing: bytes[path])) else {
                throw Refusal(reason: "invalid percent-encoding, NUL or non-UTF-8 in path")
            }
            decoded = p
        }
        if !query.isEmpty {
            guard PercentDecoding.isValid(UnsafeBufferPointer(rebasing: bytes[query])) else {
                throw Refusal(reason: "invalid percent-encoding in query")
            }
        }
        return RequestTarget(rawPath: path, query: query, decodedPath: decoded)
    }
}

extension HTTPMethod {
    /// What a method token is: one of ours, a token we do not serve (501), or not a token (400).
    @usableFromInline
    package enum Parsed: Equatable {
        case method(HTTPMethod)
        case unsupported
        case notAToken
    }

    /// Reads a method token (RFC 9110 9.1: case-sensitive).
    @inlinable
    package static func parse(_ m: UnsafeRawBufferPointer) -> Parsed {
        func eq(_ s: StaticString) -> Bool {
            guard s.utf8CodeUnitCount == m.count else { return false }
            for i in 0..<m.count where s.utf8Start[i] != m[i] { return false }
            return true
        }
        switch m.count {
        case 3:
            if eq("GET") { return .method(.get) }
            if eq("PUT") { return .method(.put) }
        case 4:
            if eq("POST") { return .method(.post) }
            if eq("HEAD") { return .method(.head) }
        case 5:
            if eq("PATCH") { return .method(.patch) }
        case 6:
            if eq("DELETE") { return .method(.delete) }
        case 7:
            if eq("OPTIONS") { return .method(.options) }
        default: break
        }
        for b in m where !isTokenChar(b) { return .notAToken }
        return .unsupported
    }

    /// RFC 9110 5.6.2 tchar: digits, letters and ! # $ % & ' * + - . ^ _ ` | ~, as two bit
    /// masks over the bytes 0–63 and 64–127 (one test per byte instead of a chain of ranges).
    @inlinable
    package static func isTokenChar(_ b: UInt8) -> Bool {
        b < 128 && ((b < 64 ? 0x03ff_6cfa_0000_0000 : 0x57ff_ffff_c7ff_fffe) as UInt64) >> (b & 63) & 1 != 0
    }
}
