import NeedletailBytes
import Testing
@testable import NeedletailHTTP
@testable import NeedletailServer

/// The access log's fields written from the request's bytes: nginx's escaping and addresses.
@Suite struct AccessLogLineTests {
    func escaped(_ bytes: [UInt8]?) -> String {
        let out = ByteBuffer(capacity: 64)
        if let bytes {
            bytes.withUnsafeBytes { AccessLogBuffer.appendEscaped($0, to: out) }
        } else {
            AccessLogBuffer.appendEscaped(nil, to: out)
        }
        return String(decoding: Array(out.bytes), as: UTF8.self)
    }

    @Test func escapesAsNginxDoes() {
        #expect(escaped(Array("plain /path?x=1".utf8)) == "plain /path?x=1")
        #expect(escaped(Array(#"a "q" \ b"#.utf8)) == #"a \x22q\x22 \x5C b"#)
        #expect(escaped([0x41, 0x09, 0x7f, 0x7e, 0xc3, 0xa9, 0x20]) == #"A\x09\x7F~\xC3\xA9 "#)
        #expect(escaped([]) == "")
        #expect(escaped(nil) == "-")
    }

    /// Word-at-a-time checks against a byte-by-byte reference, for every length up to 24 and
    /// each byte that needs escaping at every position.
    @Test func escapingMatchesAReferenceAtEveryOffset() {
        func reference(_ bytes: [UInt8]) -> String {
            var s = ""
            for b in bytes {
                if b < 0x20 || b > 0x7e || b == 0x22 || b == 0x5c {
                    s += "\\x" + String(b, radix: 16, uppercase: true).leftPadded(to: 2)
                } else {
                    s.unicodeScalars.append(Unicode.Scalar(b))
                }
            }
            return s
        }
        for n in 0...24 {
            let plain = (0..<n).map { UInt8(ascii: "a") + UInt8($0 % 26) }
            #expect(escaped(plain) == reference(plain))
            for at in 0..<n {
                for bad: UInt8 in [0x00, 0x1f, 0x22, 0x5c, 0x7f, 0x80, 0xff] {
                    var bytes = plain
                    bytes[at] = bad
                    #expect(escaped(bytes) == reference(bytes), "length \(n), byte \(bad) at \(at)")
                }
            }
        }
    }

    @Test func addresses() {
        func text(_ r: RemoteAddress) -> String {
            let out = ByteBuffer(capacity: 64)
            AccessLogBuffer.appendAddress(r, to: out)
            return String(decoding: Array(out.bytes), as: UTF8.self)
        }
        let a: UInt32 = [UInt8]([192, 0, 2, 255]).withUnsafeBytes { $0.load(as: UInt32.self) }
        #expect(text(.ipv4(a)) == "192.0.2.255")
        #expect(text(.ipv4(0)) == "0.0.0.0")
        #expect(text(.unknown) == "-")
        #expect(text(.text("")) == "-")
        #expect(text(.text("2001:db8::1")) == "2001:db8::1")
        #expect(text(.text("bad\"addr")) == #"bad\x22addr"#)
        let lo: UInt64 = [UInt8]([0, 0, 0, 0, 0, 0, 0, 1]).withUnsafeBytes { $0.load(as: UInt64.self) }
        #expect(text(.ipv6(0, lo)) == "::1")
    }

    /// The Referer, User-Agent and Accept-Encoding values the parser notes are those a scan of
    /// the fields finds: any letter case, the first of repeated fields, absent ones, and a head
    /// too long to note.
    @Test func notedFieldsMatchAScan() {
        let filler = "X-Filler: " + String(repeating: "f", count: 70_000) + "\r\n"
        let heads = [
            "GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: curl/8\r\nReferer: http://r/\r\nAccept-Encoding: gzip, br\r\n\r\n",
            "GET / HTTP/1.1\r\nhost: a\r\nREFERER:  spaced  \r\nuser-AGENT:x\r\nReferer: second\r\nUser-Agent: y\r\n"
                + "ACCEPT-encoding:  identity \r\naccept-encoding: gzip\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\nReferrer: misspelt\r\nUser-Agents: no\r\nRefere: no\r\nUser-Agent:\r\n"
                + "Accept-Encodings: no\r\nAccept-Encodin: no\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: a\r\n" + filler + "User-Agent: late\r\nReferer: r\r\nAccept-Encoding: gzip\r\n\r\n",
        ]
        var limits = HTTPLimits()
        limits.maxHeaderBytes = 100_000
        for (i, text) in heads.enumerated() {
            var decoder = HTTPRequestDecoder(limits: limits)
            let (event, _) = Array(text.utf8).withUnsafeBytes { decoder.next($0) }
            guard case .request(let head, let body, let trailers) = event else {
                Issue.record("head \(i) was not parsed: \(event)")
                continue
            }
            let request = head.request(body: body, trailers: trailers, remote: .unknown)
            func strings(_ a: UnsafeRawBufferPointer?, _ b: UnsafeRawBufferPointer?) -> [String?] {
                [a.map { String(decoding: $0, as: UTF8.self) }, b.map { String(decoding: $0, as: UTF8.self) }]
            }
            let noted = request.headers.withRefererAndAgent(strings)
            let scanned = request.headers.withFirstValues("referer", "user-agent", strings)
            #expect(noted == scanned, "head \(i)")
            let notedCoding = request.headers.firstAcceptEncoding { String(decoding: $0, as: UTF8.self) }
            let scannedCoding = request.headers.firstValue("accept-encoding") { String(decoding: $0, as: UTF8.self) }
            #expect(notedCoding == scannedCoding, "head \(i)")
            #expect(notedCoding == [i == 0 ? "gzip, br" : nil, "identity", nil, nil, "gzip"][i], "head \(i)")
            if i == 4 {
                #expect(request.headers.noted.agent == .max, "a head over 65,534 bytes is not noted")
                #expect(request.headers.noted.acceptEncoding == .max)
            }
        }
        #expect(heads.count == 5)
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
