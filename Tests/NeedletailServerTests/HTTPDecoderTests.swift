import NeedletailTestSupport
import Testing
@testable import NeedletailServer

/// Feeds `input` to a decoder in pieces cut at `cuts`, keeping unconsumed bytes as the loop
/// does, and describes every event.
func decode(_ input: [UInt8], cuts: [Int] = [], limits: HTTPLimits = HTTPLimits()) -> [String] {
    var decoder = HTTPRequestDecoder(limits: limits)
    var events: [String] = []
    var buffer: [UInt8] = []
    var start = 0
    for end in cuts + [input.count] where end >= start {
        buffer += input[start..<end]
        start = end
        feeding: while !buffer.isEmpty {
            let (event, used) = buffer.withUnsafeBytes { decoder.next($0) }
            buffer.removeFirst(used)
            switch event {
            case .needMore: break feeding
            case .progress: continue
            case .sendContinue: events.append("100-continue")
            case .error(let e):
                events.append("error \(e.status.code)")
                return events
            case .request(let head, let body, let trailers):
                let headers = HeaderFieldsDescription(head)
                events.append(
                    "\(head.method.rawValue) \(head.decodedPath ?? String(decoding: head.bytes[head.rawPath], as: UTF8.self)) q=\(String(decoding: head.bytes[head.query], as: UTF8.self)) "
                        + "\(head.version) ka=\(head.keepAlive) host=\(head.host.map { String(decoding: head.bytes[$0], as: UTF8.self) } ?? "-") [\(headers)] body=\(String(decoding: body, as: UTF8.self)) "
                        + "trailers=\(String(decoding: trailers, as: UTF8.self).replacingCRLF())")
            }
        }
    }
    return events
}

private func HeaderFieldsDescription(_ head: HTTPRequestHead) -> String {
    String(decoding: head.bytes[head.fields], as: UTF8.self).replacingCRLF()
}

extension String {
    func replacingCRLF() -> String {
        var out = ""
        for ch in unicodeScalars { out += ch == "\r" ? "" : (ch == "\n" ? ";" : String(ch)) }
        return out
    }
}

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

@Suite("HTTP/1.1 request decoding")
struct HTTPDecoderTests {
    static let valid: [String] = [
        "GET /hello?name=TLUG HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world",
        "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: 42\r\n\r\n",
        "GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\nGET /c HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        "GET http://Example.org:8080/p%20q?x=1 HTTP/1.1\r\nHost: ignored\r\n\r\n",
        "\r\n\r\nGET / HTTP/1.0\r\n\r\n",
        "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /caf%C3%A9 HTTP/1.1\r\nHost: a\r\nAccept: a\r\nAccept: b\r\n\r\n",
        "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\nExpect: 100-continue\r\n\r\nabc",
        "POST /x HTTP/1.1\r\nHost: a\r\ntransfer-encoding: CHUNKED\r\n\r\n0\r\n\r\n",
        "POST /x HTTP/1.1\r\nHost: [::1]:8080\r\nTransfer-Encoding:\tchunked\r\n\r\n0000000000000000000000003\r\nabc\r\n0\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: xn--caf-dma.example_1.org.\r\n\r\n",
    ]

    @Test("valid requests decode", arguments: valid)
    func validRequests(_ text: String) {
        let events = decode(bytes(text))
        #expect(!events.isEmpty)
        #expect(!events.contains { $0.hasPrefix("error") }, "\(events)")
    }

    @Test func fieldsAndTargets() {
        #expect(
            decode(bytes(Self.valid[0])) == [
                "GET /hello q=name=TLUG HTTP/1.1 ka=true host=example.com [Host: example.com;User-Agent: t;] body= trailers="
            ])
        #expect(
            decode(bytes(Self.valid[2])) == [
                "POST /echo q= HTTP/1.1 ka=true host=a [Host: a;Transfer-Encoding: chunked;] body=hello world trailers=X-Checksum: 42;"
            ])
        #expect(decode(bytes(Self.valid[4])).first?.hasPrefix("GET /p q q=x=1 HTTP/1.1 ka=true host=Example.org:8080") == true)
        #expect(decode(bytes(Self.valid[5])) == ["GET / q= HTTP/1.0 ka=false host=- [] body= trailers="])
        #expect(decode(bytes(Self.valid[6])).first?.contains("HTTP/1.0 ka=true") == true)
        #expect(decode(bytes(Self.valid[7])).first?.hasPrefix("OPTIONS * q=") == true)
        #expect(decode(bytes(Self.valid[8])).first?.hasPrefix("GET /café q=") == true)
        #expect(decode(bytes(Self.valid[3])).map { $0.prefix(6) } == ["GET /a", "GET /b", "GET /c"])
        #expect(decode(bytes(Self.valid[3])).last?.contains("ka=false") == true)
        #expect(decode(bytes(Self.valid[9])).last?.contains("body=abc") == true)
    }

    @Test("every split gives the same requests", arguments: valid)
    func everySplit(_ text: String) {
        let input = bytes(text)
        let whole = decode(input).filter { $0 != "100-continue" }
        for cut in 0...input.count {
            #expect(decode(input, cuts: [cut]).filter { $0 != "100-continue" } == whole, "cut at \(cut)")
        }
        #expect(
            decode(input, cuts: Array(0..<input.count)).filter { $0 != "100-continue" } == whole.filter { $0 != "100-continue" },
            "one byte at a time")
    }

    @Test func expectContinueWhenBodyNotYetSent() {
        let head = bytes("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
        let events = decode(head + bytes("abc"), cuts: [head.count])
        #expect(events.first == "100-continue")
        #expect(events.last?.contains("body=abc") == true)
    }

    static let malformed: [(String, Int)] = [
        ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nhello", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\nhello!", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n  folded\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\u{0}\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", 400),
        ("GET / HTTP/1.1\nHost: a\n\n", 400),
        ("GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHo(st: a\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\n: a\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\u{7F}b\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        ("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
        ("GET / HTTP/0.9\r\n\r\n", 505),
        ("GET / HTTX/1.1\r\nHost: a\r\n\r\n", 400),
        ("GET /\r\n\r\n", 400),
        ("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 501),
        ("CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", 501),
        ("TRACE / HTTP/1.1\r\nHost: a\r\n\r\n", 501),
        ("G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("GET /a%zz HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("GET /a%00 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("GET /a%ff HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("GET /a?x=%g1 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("GET /caf\u{e9} HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("GET http:/// HTTP/1.1\r\nHost: a\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", 400),
        ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501),
        ("POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n", 417),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n", 413),
        // Leading zeros are fine (1*HEXDIG); a size past the body limit is 413 however written.
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1FFFFFFFFFFFFFFFF\r\n", 413),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + String(repeating: "0", count: 5000) + "1\r\n", 400),
        // HTTP/0.9 (no version) is refused as soon as the line ends, not after a head that never comes.
        ("GET /hello\r\n", 400),
        // RFC 9112 3.2: an invalid Host value.
        ("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: user@a\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX", 400),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nBad Trailer: x\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0;" + String(repeating: "e", count: 5000) + "\r\n\r\n", 400),
    ]

    @Test("malformed requests are refused with the right status", arguments: malformed)
    func malformedRequests(_ text: String, _ status: Int) {
        let input = bytes(text)
        #expect(decode(input) == ["error \(status)"])
        #expect(decode(input, cuts: Array(0..<input.count)) == ["error \(status)"], "one byte at a time")
    }

    @Test func fieldNamesMatchInAnyCaseAndOnlyWhole() {
        let shouted = decode(bytes("POST /x HTTP/1.1\r\nHOST: a\r\nCONTENT-length: 3\r\ncOnNeCtIoN: close\r\n\r\nabc"))
        #expect(shouted.count == 1)
        #expect(shouted.first?.contains("ka=false host=a") == true, "\(shouted)")
        #expect(shouted.first?.contains("body=abc") == true, "\(shouted)")
        // Names one letter off, or longer, frame nothing: the request has no body and keeps alive.
        for name in ["Content-Lengtx", "Xontent-Length", "Content-Lengths", "Connectiom", "Transfer-Encodinh", "Hosts"] {
            let events = decode(bytes("GET / HTTP/1.1\r\nHost: a\r\n\(name): close\r\n\r\n"))
            #expect(events.count == 1 && events[0].contains("ka=true") && events[0].contains("body= "), "\(name): \(events)")
        }
        #expect(decode(bytes("POST / HTTP/1.1\r\nHost: a\r\nEXPECT: 200-ok\r\n\r\n")) == ["error 417"])
        #expect(decode(bytes("POST / HTTP/1.1\r\nHost: a\r\nTRANSFER-ENCODING: chunked\r\n\r\n0\r\n\r\n")).count == 1)
    }

    /// Answer field names: any byte that is not a token character, at any offset, is refused.
    @Test func unsafeAnswerFieldNamesAreRefusedAtEveryOffset() {
        let good = "Content-Security-Policy-Report_Only.x~1"
        #expect(HTTPResponseEncoder.isSafe(name: good, value: "v"))
        #expect(!HTTPResponseEncoder.isSafe(name: "", value: "v"))
        for length in 1...good.utf8.count {
            let name = Array(good.utf8.prefix(length))
            #expect(HTTPResponseEncoder.isSafe(name: String(decoding: name, as: UTF8.self), value: "v"))
            for offset in 0..<length {
                for bad in [" ", ":", "\r", "\n", "\u{0}", "(", "é", "\u{7f}"] {
                    var n = name
                    n.replaceSubrange(offset...offset, with: Array(bad.utf8))
                    #expect(!HTTPResponseEncoder.isSafe(name: String(decoding: n, as: UTF8.self), value: "v"), "\(n)")
                }
            }
        }
        #expect(!HTTPResponseEncoder.isSafe(name: "X-Ok", value: "a\r\nInjected: 1"))
    }

    @Test func hostCharactersAreExactlyTheRFCSet() {
        // uri-host [":" port]: unreserved, sub-delims, ":" and an IP literal's brackets.
        let allowed = Set(Array("0123456789:;=ABCDEFGHIJKLMNOPQRSTUVWXYZ[]abcdefghijklmnopqrstuvwxyz!$%&'()*+,-._~".utf8))
        for b in 0...255 {
            #expect(HTTPHeadParser.isHostChar(UInt8(b)) == allowed.contains(UInt8(b)), "byte \(b)")
        }
    }

    /// The head scan jumps eight bytes at a time: a control byte at any offset is still found.
    @Test func controlByteAtEveryOffsetIsRefused() {
        let head = bytes("GET /hello?name=x HTTP/1.1\r\nHost: example.com\r\nUser-Agent: a-rather-long-value\r\n\r\n")
        let cr = UInt8(ascii: "\r"), lf = UInt8(ascii: "\n")
        for offset in 0..<(head.count - 4) where head[offset] != cr && head[offset] != lf {
            for bad: UInt8 in [0, 1, 8, 11, 27, 31, 127] {
                var input = head
                input[offset] = bad
                #expect(decode(input) == ["error 400"], "byte \(bad) at \(offset)")
            }
        }
        var tab = head
        tab[tab.count - 5] = 9  // HTAB inside a value is allowed
        #expect(decode(tab).count == 1 && !decode(tab)[0].hasPrefix("error"))
    }

    @Test func limits() {
        var limits = HTTPLimits()
        limits.maxBodyBytes = 10
        #expect(decode(bytes("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n"), limits: limits) == ["error 413"])
        #expect(decode(bytes("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789"), limits: limits).count == 1)
        let chunked = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n012345\r\n5\r\n01234\r\n0\r\n\r\n"
        #expect(decode(bytes(chunked), limits: limits) == ["error 413"])
        #expect(decode(bytes("GET /" + String(repeating: "a", count: 9000) + " HTTP/1.1\r\nHost: a\r\n\r\n")) == ["error 414"])
        // Without the whole line yet: refused as soon as it is too long.
        #expect(decode(bytes("GET /" + String(repeating: "a", count: 9000))) == ["error 414"])
        let bigHeaders = "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + String(repeating: "b", count: 8200) + "\r\n\r\n"
        #expect(decode(bytes(bigHeaders)) == ["error 431"])
        #expect(decode(bytes(String(bigHeaders.dropLast(4)))) == ["error 431"])
        let many = "GET / HTTP/1.1\r\nHost: a\r\n" + (0..<101).map { "X-\($0): 1\r\n" }.joined() + "\r\n"
        #expect(decode(bytes(many)) == ["error 431"])
        let hundred = "GET / HTTP/1.1\r\nHost: a\r\n" + (0..<99).map { "X-\($0): 1\r\n" }.joined() + "\r\n"
        #expect(decode(bytes(hundred)).count == 1)
    }

    @Test func pipelinedHundred() {
        let one = "GET /hello?name=x HTTP/1.1\r\nHost: a\r\n\r\n"
        let input = bytes(String(repeating: one, count: 100))
        #expect(decode(input).count == 100)
        #expect(decode(input, cuts: stride(from: 7, to: input.count, by: 13).map { $0 }).count == 100)
    }
}
