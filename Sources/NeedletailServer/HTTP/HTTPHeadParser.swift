import Glibc
import NeedletailBytes
import NeedletailHTTP

/// The HTTP/1.1 request-head parser (RFC 9112 sections 2 to 7).
///
/// It is fed the bytes of a connection from the start of a request. Finding the end of the head
/// is incremental (`scanned` remembers how far it got, so a head that trickles in is scanned
/// once); the head is parsed in one pass once complete. Every rule it enforces, and why, is in
/// docs/HTTP.md.
struct HTTPHeadParser {
    var limits: HTTPLimits
    /// Bytes from the request start already checked: no control byte but HTAB and CRLF pairs.
    private(set) var scanned = 0
    private var requestLineEnd = -1
    private var lineStart = 0
    /// The previous request's head bytes, given back once it was answered: the next head is
    /// copied into them instead of a new array (a malloc and a free per request).
    private var spare: [UInt8] = []

    init(limits: HTTPLimits) { self.limits = limits }

    enum Outcome {
        case needMore
        /// Leading empty lines (RFC 9112 2.2) to skip.
        case skip(Int)
        case head(HTTPRequestHead, consumed: Int)
        case error(HTTPError)
    }

    /// Keeps an answered request's head bytes for the next head (not a big one: an idle
    /// connection should not sit on a large buffer).
    mutating func recycle(_ bytes: consuming [UInt8]) {
        if bytes.capacity <= 4096 { spare = bytes }
    }

    /// Forgets progress (after a head was consumed).
    mutating func reset() {
        scanned = 0
        requestLineEnd = -1
        lineStart = 0
    }

    /// Whether any byte of a request has been seen (for timeouts and graceful stop).
    var hasPartialHead: Bool { scanned > 0 }

    mutating func parse(_ buf: UnsafeRawBufferPointer) -> Outcome {
        let n = buf.count
        if scanned == 0 {
            // Skip empty lines before the request line.
            var i = 0
            while i + 1 < n && buf[i] == 13 && buf[i + 1] == 10 { i += 2 }
            if i > 0 { return .skip(i) }
            if n == 0 { return .needMore }
        }
        var i = scanned
        guard let base = buf.baseAddress else { return .needMore }
        while i < n {
            // Eight bytes at a time while none is a control byte; then straight to the first one
            // (`i + 8 <= n` keeps every load inside the buffer, so wrapping arithmetic is safe).
            while i &+ 8 <= n {
                let m = ByteScan.controlMask(base.loadUnaligned(fromByteOffset: i, as: UInt64.self))
                if m != 0 {
                    i &+= m.trailingZeroBitCount &>> 3
                    break
                }
                i &+= 8
            }
            guard i < n else { break }
            let b = base.load(fromByteOffset: i, as: UInt8.self)
            // Every byte of the head is checked here once: field values need no scan of their own.
            if (b >= 32 && b != 127) || b == 9 {
                i += 1
                continue
            }
            if b == 0 { return .error(.bad("NUL byte in request head")) }
            if b == 10 { return .error(.bad("bare LF in request head (lines must end with CRLF)")) }
            if b != 13 { return .error(.bad("control character in request head")) }
            // CR: needs its LF.
            guard i + 1 < n else { break }
            guard buf[i + 1] == 10 else { return .error(.bad("bare CR in request head")) }
            if requestLineEnd < 0 {
                if i > limits.maxRequestLine {
                    return .error(HTTPError(.uriTooLong, "request line longer than \(limits.maxRequestLine) bytes"))
                }
                requestLineEnd = i
                // A request line must end in a version: refuse HTTP/0.9 ("GET /path") now
                // rather than wait for a header section that will never come.
                guard i >= 9, buf[i - 9] == 32, buf[i - 8] == UInt8(ascii: "H"), buf[i - 4] == UInt8(ascii: "/") else {
                    return .error(.bad("request line without an HTTP version (HTTP/0.9 is not supported)"))
                }
            } else if i == lineStart {
                // Empty line: the head is complete.
                scanned = 0
                let total = i + 2
                let lineEnd = requestLineEnd
                reset()
                do {
                    return .head(
                        try HTTPHeadParser.parseHead(buf, requestLineEnd: lineEnd, headEnd: total, limits: limits, reusing: &spare),
                        consumed: total)
                } catch {
                    return .error(error)
                }
            }
            i += 2
            lineStart = i
            if requestLineEnd >= 0 && i - requestLineEnd - 2 > limits.maxHeaderBytes + 2 {
                return .error(HTTPError(.requestHeaderFieldsTooLarge, "header section larger than \(limits.maxHeaderBytes) bytes"))
            }
            if requestLineEnd >= 0, i < n, buf[i] == 32 || buf[i] == 9 {
                return .error(.bad("obsolete line folding in header section"))
            }
        }
        scanned = i
        if requestLineEnd < 0 && i > limits.maxRequestLine {
            return .error(HTTPError(.uriTooLong, "request line longer than \(limits.maxRequestLine) bytes"))
        }
        if requestLineEnd >= 0 && i - requestLineEnd > limits.maxHeaderBytes + 4 {
            return .error(HTTPError(.requestHeaderFieldsTooLarge, "header section larger than \(limits.maxHeaderBytes) bytes"))
        }
        return .needMore
    }

    // MARK: Parsing a complete head

    /// Characters of a Host value: unreserved, sub-delims, "%" (pct-encoded), and "[", "]", ":"
    /// (IP literals and the port), as two 64-bit sets: one shift and test per byte
    /// (HTTPDecoderTests checks the sets against the list).
    @inline(__always)
    static func isHostChar(_ b: UInt8) -> Bool {
        b < 128 && ((b < 64 ? 0x2fff_7ff2_0000_0000 : 0x47ff_fffe_afff_fffe) as UInt64) >> (b & 63) & 1 != 0
    }

    @inline(__always)
    static func isTokenChar(_ b: UInt8) -> Bool { HTTPMethod.isTokenChar(b) }

    static func parseMethod(_ m: UnsafeRawBufferPointer) throws(HTTPError) -> HTTPMethod {
        switch HTTPMethod.parse(m) {
        case .method(let method): return method
        case .unsupported: throw HTTPError(.notImplemented, "method not supported")
        case .notAToken: throw .bad("method is not a token")
        }
    }

    /// The request line: method SP request-target SP HTTP-version.
    struct RequestLine {
        var method: HTTPMethod
        var target: Range<Int>
        var version: HTTPVersion
    }

    /// The facts of the header section that framing and the connection depend on.
    struct FieldSummary {
        var contentLength: Int? = nil
        var transferEncoding = false
        var closeToken = false
        var keepAliveToken = false
        var expectContinue = false
        var hostCount = 0
        var host = 0..<0
        /// The first Referer, User-Agent (the access log's) and Accept-Encoding values.
        var noted = HeaderFields.NotedFields.absent
    }

    static func parseHead(
        _ buf: UnsafeRawBufferPointer, requestLineEnd: Int, headEnd: Int, limits: HTTPLimits, reusing spare: inout [UInt8]
    ) throws(HTTPError) -> HTTPRequestHead {
        let line = try parseRequestLine(buf, end: requestLineEnd)
        let fieldsStart = requestLineEnd + 2
        let fields = try parseFields(buf, from: fieldsStart, headEnd: headEnd, version: line.version, limits: limits)
        let framing = try bodyFraming(fields, version: line.version, limits: limits)
        let (authority, target) = try parseTarget(buf, line)
        // Into the spare array when there is one (emptied in place when nothing else holds it).
        var bytes: [UInt8] = []
        swap(&bytes, &spare)
        bytes.removeAll(keepingCapacity: true)
        bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: buf[0..<headEnd]))
        let keepAlive = line.version == .http1_1 ? !fields.closeToken : (fields.keepAliveToken && !fields.closeToken)
        return HTTPRequestHead(
            method: line.method, version: line.version, bytes: bytes, target: line.target, rawPath: target.rawPath,
            decodedPath: target.decodedPath, query: target.query, fields: fieldsStart..<(headEnd - 2),
            host: authority ?? (fields.hostCount == 1 ? fields.host : nil), noted: fields.noted, framing: framing,
            keepAlive: keepAlive, expectContinue: fields.expectContinue && line.version == .http1_1)
    }

    /// Method, target and version; the target is checked for bytes it may not hold.
    @inline(__always)
    static func parseRequestLine(_ buf: UnsafeRawBufferPointer, end requestLineEnd: Int) throws(HTTPError) -> RequestLine {
        var sp1 = 0
        while sp1 < requestLineEnd && buf[sp1] != 32 { sp1 += 1 }
        guard sp1 < requestLineEnd, sp1 > 0 else { throw .bad("malformed request line") }
        var sp2 = sp1 + 1
        while sp2 < requestLineEnd && buf[sp2] != 32 { sp2 += 1 }
        guard sp2 < requestLineEnd else {
            throw (.bad("malformed request line (HTTP/0.9 and missing versions are not served)"))
        }
        let method = try parseMethod(UnsafeRawBufferPointer(rebasing: buf[0..<sp1]))
        let targetStart = sp1 + 1
        let targetEnd = sp2
        guard targetEnd > targetStart else { throw .bad("empty request target") }
        let target = UnsafeRawBufferPointer(rebasing: buf[targetStart..<targetEnd])
        let badAt = ByteScan.firstIndex(
            in: target,
            mayHold: { w in
                ByteScan.hasByte(of: w, below: 33) || ByteScan.hasHighByte(w) || ByteScan.hasByte(of: w, equalTo: 127)
                    || ByteScan.hasByte(of: w, equalTo: UInt8(ascii: "#"))
            },
            isBad: { $0 <= 32 || $0 >= 127 || $0 == UInt8(ascii: "#") })
        if badAt < target.count {
            if target[badAt] == UInt8(ascii: "#") { throw .bad("request target holds a fragment") }
            throw .bad("request target holds a space, control or non-ASCII byte")
        }
        let vlen = requestLineEnd - (sp2 + 1)
        let v = sp2 + 1
        guard
            vlen == 8 && buf[v] == 72 && buf[v + 1] == 84 && buf[v + 2] == 84 && buf[v + 3] == 80 && buf[v + 4] == 47
                && buf[v + 6] == 46 && (48...57).contains(buf[v + 5]) && (48...57).contains(buf[v + 7])
        else {
            throw .bad("malformed HTTP version")
        }
        let major = Int(buf[v + 5] - 48), minor = Int(buf[v + 7] - 48)
        guard major == 1 else { throw HTTPError(.httpVersionNotSupported, "only HTTP/1.x is served") }
        return RequestLine(method: method, target: targetStart..<targetEnd, version: HTTPVersion(major: 1, minor: minor >= 1 ? 1 : 0))
    }

    /// The header fields from `start` to the blank line: each checked (name, value, limits),
    /// and the ones framing and the connection need read into a `FieldSummary`.
    @inline(__always)
    static func parseFields(
        _ buf: UnsafeRawBufferPointer, from start: Int, headEnd: Int, version: HTTPVersion,
        limits: HTTPLimits
    ) throws(HTTPError) -> FieldSummary {
        var summary = FieldSummary()
        var fieldCount = 0
        var line = start
        while line < headEnd - 2 {
            // The head ends in CRLF CRLF, so a CR is found before `headEnd`.
            let begin = buf.baseAddress! + line
            var eol = headEnd - 2
            if let cr = memchr(begin, 13, headEnd - line) { eol = line + (UnsafeRawPointer(cr) - begin) }
            if buf[line] == 32 || buf[line] == 9 { throw .bad("obsolete line folding in header section") }
            fieldCount += 1
            if fieldCount > limits.maxHeaderFields {
                throw HTTPError(.requestHeaderFieldsTooLarge, "more than \(limits.maxHeaderFields) header fields")
            }
            var colon = line
            // Eight name bytes at a time while they are letters, digits or `-` (the usual names;
            // loads stay inside the head), then byte by byte for other token characters.
            while colon &+ 8 <= headEnd {
                let other = ~ByteScan.nameMask(buf.baseAddress!.loadUnaligned(fromByteOffset: colon, as: UInt64.self)) & ByteScan.highBits
                if other != 0 {
                    colon &+= other.trailingZeroBitCount &>> 3
                    break
                }
                colon &+= 8
            }
            while colon < eol && isTokenChar(buf[colon]) { colon += 1 }
            // The name ends at the first byte that is not a token character: the colon, or an error.
            if colon < eol && buf[colon] != UInt8(ascii: ":") {
                let b = buf[colon]
                if b == 32 || b == 9 { throw .bad("whitespace between header field name and colon") }
                throw .bad("invalid character in header field name")
            }
            guard colon < eol, colon > line else { throw .bad("header field without a name or colon") }
            var vs = colon + 1
            while vs < eol && (buf[vs] == 32 || buf[vs] == 9) { vs += 1 }
            var ve = eol
            while ve > vs && (buf[ve - 1] == 32 || buf[ve - 1] == 9) { ve -= 1 }
            // No control byte in it: `parse` checked every byte of the head.
            let value = UnsafeRawBufferPointer(rebasing: buf[vs..<ve])
            try summarize(name: UnsafeRawBufferPointer(rebasing: buf[line..<colon]), value: value, at: vs..<ve, into: &summary)
            line = eol + 2
        }
        if version == .http1_1 && summary.hostCount != 1 {
            throw .bad(summary.hostCount == 0 ? "HTTP/1.1 request without Host" : "more than one Host field")
        }
        if summary.hostCount > 1 { throw .bad("more than one Host field") }
        // RFC 9112 3.2: an invalid Host value is a 400 (uri-host [":" port]: reg-name characters,
        // an IP literal's brackets and colons; no slash, space, at-sign or control).
        if summary.hostCount == 1 {
            for i in summary.host where !HTTPHeadParser.isHostChar(buf[i]) {
                throw .bad("invalid character in Host")
            }
        }
        return summary
    }

    /// Reads the fields that matter to the codec (Host, Expect, Connection, Content-Length,
    /// Transfer-Encoding); the others are the app's.
    @inline(__always)
    static func summarize(
        name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, at valueRange: Range<Int>,
        into summary: inout FieldSummary
    ) throws(HTTPError) {
        // Names are token characters here, and for those `| 0x20` lowers letters and maps no other
        // token character onto a letter, so one word compare per eight bytes matches a name in
        // any case (the loads stay inside the name: each case knows its length).
        let p = name.baseAddress!
        @inline(__always) func w32(_ o: Int) -> UInt32 { p.loadUnaligned(fromByteOffset: o, as: UInt32.self) | 0x2020_2020 }
        @inline(__always) func w64(_ o: Int) -> UInt64 {
            p.loadUnaligned(fromByteOffset: o, as: UInt64.self) | 0x2020_2020_2020_2020
        }
        switch name.count {
        case 4 where w32(0) == 0x7473_6f68:  // "host"
            summary.hostCount += 1
            summary.host = valueRange
        case 6 where w32(0) == 0x6570_7865 && w32(2) == 0x7463_6570:  // "expect"
            guard lowerEquals(value, "100-continue") else {
                throw HTTPError(.expectationFailed, "only Expect: 100-continue is understood")
            }
            summary.expectContinue = true
        case 10 where w64(0) == 0x6974_6365_6e6e_6f63 && w64(2) == 0x6e6f_6974_6365_6e6e:  // "connection"
            forEachListItem(value) { t in
                if lowerEquals(t, "close") {
                    summary.closeToken = true
                } else if lowerEquals(t, "keep-alive") {
                    summary.keepAliveToken = true
                }
            }
        case 10 where w64(0) == 0x6567_612d_7265_7375 && w64(2) == 0x746e_6567_612d_7265:  // "user-agent"
            if summary.noted.agent == 0 { summary.noted.agent = HeaderFields.NotedFields.pack(valueRange) }
        case 7 where w32(0) == 0x6566_6572 && w32(3) == 0x7265_7265:  // "referer"
            if summary.noted.referer == 0 { summary.noted.referer = HeaderFields.NotedFields.pack(valueRange) }
        case 15 where w64(0) == 0x652d_7470_6563_6361 && w64(7) == 0x676e_6964_6f63_6e65:  // "accept-encoding"
            if summary.noted.acceptEncoding == 0 { summary.noted.acceptEncoding = HeaderFields.NotedFields.pack(valueRange) }
        case 14 where w64(0) == 0x2d74_6e65_746e_6f63 && w64(6) == 0x6874_676e_656c_2d74:  // "content-length"
            var bad = false
            forEachListItem(value) { item in
                guard let n = parseDecimal(item) else { bad = true; return }
                if let old = summary.contentLength, old != n { bad = true }
                summary.contentLength = n
            }
            if bad || value.isEmpty { throw .bad("invalid or conflicting Content-Length") }
        case 17 where w64(0) == 0x7265_6673_6e61_7274 && w64(9) == 0x676e_6964_6f63_6e65:  // "transfer-encoding"
            var codings: [Bool] = []  // true = chunked
            forEachListItem(value) { item in codings.append(lowerEquals(item, "chunked")) }
            if summary.transferEncoding { codings.insert(true, at: 0) }
            summary.transferEncoding = true
            guard let last = codings.last else { throw .bad("empty Transfer-Encoding") }
            if !last { throw .bad("Transfer-Encoding does not end in chunked") }
            if codings.count > 1 {
                throw HTTPError(.notImplemented, "transfer codings other than chunked are not supported")
            }
        default:
            break
        }
    }

    /// How the body is delimited (RFC 9112 6.3), and whether its announced size is allowed.
    @inline(__always)
    static func bodyFraming(_ fields: FieldSummary, version: HTTPVersion, limits: HTTPLimits) throws(HTTPError) -> BodyFraming {
        if fields.transferEncoding {
            if fields.contentLength != nil { throw .bad("both Content-Length and Transfer-Encoding") }
            if version == .http1_0 { throw .bad("Transfer-Encoding in an HTTP/1.0 request") }
            return .chunked
        }
        guard let n = fields.contentLength else { return .none }
        if n > limits.maxBodyBytes {
            throw HTTPError(.contentTooLarge, "request body larger than \(limits.maxBodyBytes) bytes")
        }
        return n > 0 ? .length(n) : .none
    }

    /// The target's form (RFC 9112 3.2: origin, absolute or asterisk), its authority for the
    /// absolute form, and its path and query.
    @inline(__always)
    static func parseTarget(
        _ buf: UnsafeRawBufferPointer, _ line: RequestLine
    ) throws(HTTPError) -> (authority: Range<Int>?, target: RequestTarget) {
        let start = line.target.lowerBound, end = line.target.upperBound
        var pathStart = start
        var authority: Range<Int>? = nil
        if buf[start] == UInt8(ascii: "/") {
            // origin-form
        } else if buf[start] == UInt8(ascii: "*") && end - start == 1 {
            guard line.method == .options else { throw .bad("asterisk-form target with a method other than OPTIONS") }
            return (nil, RequestTarget(rawPath: end..<end, query: end..<end, decodedPath: "*"))
        } else if let schemeEnd = absoluteFormSchemeEnd(buf, start, end) {
            var a = schemeEnd
            while a < end && buf[a] != UInt8(ascii: "/") && buf[a] != UInt8(ascii: "?") { a += 1 }
            guard a > schemeEnd else { throw .bad("absolute-form target without a host") }
            authority = schemeEnd..<a
            pathStart = a
        } else {
            throw .bad("request target is not origin-, absolute- or asterisk-form")
        }
        do {
            var target = try RequestTarget.parse(buf.bindMemory(to: UInt8.self), pathStart..<end)
            if target.rawPath.isEmpty { target.decodedPath = "/" }  // http://host?q
            return (authority, target)
        } catch {
            throw .bad(error.reason)
        }
    }

    /// For `http://` or `https://` (any letter case), the index after `//`.
    static func absoluteFormSchemeEnd(_ buf: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> Int? {
        for scheme in ["http://", "https://"] as [StaticString] {
            let n = scheme.utf8CodeUnitCount
            if end - start > n && lowerEquals(UnsafeRawBufferPointer(rebasing: buf[start..<(start + n)]), scheme) {
                return start + n
            }
        }
        return nil
    }
}
