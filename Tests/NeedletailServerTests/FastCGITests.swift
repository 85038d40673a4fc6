import NeedletailTestSupport
import Foundation
import Glibc
import Testing
import NeedletailLoop
@testable import NeedletailServer

/// A FastCGI client speaking raw records, for what cgi-fcgi cannot send.
final class FCGIClient {
    let socket: TestClient

    init(_ address: SocketAddress) throws { socket = try TestClient(address) }

    static func record(_ type: UInt8, id: UInt16, _ content: [UInt8], padding: Int = 0, version: UInt8 = 1) -> [UInt8] {
        [version, type, UInt8(id >> 8), UInt8(id & 0xff), UInt8(content.count >> 8), UInt8(content.count & 0xff), UInt8(padding), 0]
            + content + [UInt8](repeating: 0, count: padding)
    }

    static func begin(id: UInt16, role: UInt16 = 1, keep: Bool = true) -> [UInt8] {
        record(1, id: id, [UInt8(role >> 8), UInt8(role & 0xff), keep ? 1 : 0, 0, 0, 0, 0, 0])
    }

    /// Name-value pairs; `longForm` writes every length in the 4-byte form.
    static func pairs(_ pairs: [(String, String)], longForm: Bool = false) -> [UInt8] {
        var out: [UInt8] = []
        for (n, v) in pairs {
            for len in [n.utf8.count, v.utf8.count] {
                if len < 128 && !longForm {
                    out.append(UInt8(len))
                } else {
                    out += [UInt8(0x80 | (len >> 24)), UInt8((len >> 16) & 0xff), UInt8((len >> 8) & 0xff), UInt8(len & 0xff)]
                }
            }
            out += Array(n.utf8) + Array(v.utf8)
        }
        return out
    }

    /// A whole request: BEGIN, params (in records of `paramChunk` bytes), empty PARAMS, STDIN, empty STDIN.
    static func request(
        id: UInt16, _ params: [(String, String)], body: [UInt8] = [], keep: Bool = true,
        paramChunk: Int = 65535, longForm: Bool = false, padding: Int = 0
    ) -> [UInt8] {
        var out = begin(id: id, keep: keep)
        let p = pairs(params, longForm: longForm)
        var i = 0
        while i < p.count {
            let n = min(paramChunk, p.count - i)
            out += record(4, id: id, Array(p[i..<(i + n)]), padding: padding)
            i += n
        }
        out += record(4, id: id, [])
        if !body.isEmpty { out += record(5, id: id, body, padding: padding) }
        out += record(5, id: id, [])
        return out
    }

    func send(_ bytes: [UInt8]) throws { try socket.send(bytes) }

    struct Record { let type: UInt8; let id: UInt16; let content: [UInt8]; let padding: Int }

    func readRecord() throws -> Record? {
        guard let h = try socket.readExactly(8) else { return nil }
        let length = Int(h[4]) << 8 | Int(h[5])
        let padding = Int(h[6])
        guard let body = try socket.readExactly(length + padding) else { return nil }
        return Record(type: h[1], id: UInt16(h[2]) << 8 | UInt16(h[3]), content: Array(body[0..<length]), padding: padding)
    }

    struct Answer {
        var stdout: [UInt8] = []; var stderr: [UInt8] = []; var protocolStatus: UInt8 = 255; var records: [Record] = []
        var text: String { String(decoding: stdout, as: UTF8.self) }
        var body: String { text.components(separatedBy: "\r\n\r\n").dropFirst().joined(separator: "\r\n\r\n") }
    }

    /// Reads records until END_REQUEST for each of `ids`.
    func readAnswers(_ ids: [UInt16]) throws -> [UInt16: Answer] {
        var answers: [UInt16: Answer] = [:]
        var open = Set(ids)
        while !open.isEmpty {
            guard let r = try readRecord() else { throw TestClient.Failure(description: "closed before END_REQUEST") }
            answers[r.id, default: Answer()].records.append(r)
            switch r.type {
            case 6: answers[r.id, default: Answer()].stdout += r.content
            case 7: answers[r.id, default: Answer()].stderr += r.content
            case 3:
                answers[r.id, default: Answer()].protocolStatus = r.content[4]
                open.remove(r.id)
            default: break
            }
        }
        return answers
    }
}

let helloParams: [(String, String)] = [
    ("REQUEST_METHOD", "GET"), ("REQUEST_URI", "/hello?name=%3CTLUG%3E"), ("QUERY_STRING", "name=%3CTLUG%3E"),
    ("SCRIPT_NAME", "/hello"), ("SERVER_PROTOCOL", "HTTP/1.1"), ("CONTENT_LENGTH", ""), ("HTTP_HOST", "example.org"),
]

@Suite("FastCGI responder", .serialized)
struct FastCGITests {
    /// A server with one FastCGI listener on an ephemeral port.
    @Test func helloAndKeepConnection() throws {
        try withFastCGI { _, address in
            let c = try FCGIClient(address)
            try c.send(FCGIClient.request(id: 1, helloParams))
            let a = try #require(try c.readAnswers([1])[1])
            #expect(
                a.text.hasPrefix(
                    "Status: 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: 27\r\nX-Content-Type-Options: nosniff\r\n\r\n"
                ))
            #expect(a.body == "<h1>Hello &lt;TLUG&gt;</h1>")
            #expect(a.protocolStatus == 0)
            for r in a.records { #expect((r.content.count + r.padding) % 8 == 0, "records padded to 8") }
            // KEEP_CONN: the same connection serves another request.
            try c.send(FCGIClient.request(id: 1, helloParams))
            #expect(try c.readAnswers([1])[1]?.body == "<h1>Hello &lt;TLUG&gt;</h1>")
        }
    }

    @Test func withoutKeepConnectionTheAppCloses() throws {
        try withFastCGI { _, address in
            let c = try FCGIClient(address)
            try c.send(FCGIClient.request(id: 1, helloParams, keep: false))
            _ = try c.readAnswers([1])
            #expect(try c.readRecord() == nil, "nothing after END_REQUEST, then close")
        }
    }

    @Test func paramsSplitAtEveryByteLongLengthsAndPadding() throws {
        try withFastCGI { _, address in
            let c = try FCGIClient(address)
            try c.send(FCGIClient.request(id: 7, helloParams, paramChunk: 1, longForm: true, padding: 255))
            #expect(try c.readAnswers([7])[7]?.body == "<h1>Hello &lt;TLUG&gt;</h1>")
            // A 200-byte value (4-byte length form needed) and a request body in padded records.
            let long = String(repeating: "v", count: 200)
            try c.send(
                FCGIClient.request(
                    id: 2,
                    [
                        ("REQUEST_METHOD", "POST"), ("REQUEST_URI", "/echo"), ("HTTP_X_LONG", long),
                        ("CONTENT_LENGTH", "5"),
                    ], body: Array("hello".utf8), padding: 3))
            #expect(try c.readAnswers([2])[2]?.body == "hello")
        }
    }

    @Test func mapsParamsLikeTheHTTPCodec() throws {
        try withFastCGI { _, address in
            let c = try FCGIClient(address)
            try c.send(
                FCGIClient.request(
                    id: 1,
                    [
                        ("REQUEST_METHOD", "GET"), ("REQUEST_URI", "/info?x=1"), ("QUERY_STRING", "x=1"),
                        ("HTTP_HOST", "example.org:8080"), ("REMOTE_ADDR", "192.0.2.7"), ("HTTPS", "on"),
                        ("HTTP_USER_AGENT", "tester/1"), ("CONTENT_LENGTH", ""),
                    ]))
            #expect(
                try c.readAnswers([1])[1]?.body
                    == "GET /info /info?x=1 host=example.org:8080 remote=192.0.2.7 secure=true ua=tester/1 len=0")
        }
    }

    @Test func cgiParamsBecomeHeaderFieldsWithTheirHTTPNames() throws {
        let r = try CGIGateway.request(
            from: [
                ("REQUEST_METHOD", "POST"), ("REQUEST_URI", "/a?b=c"), ("HTTP_X_FORWARDED_FOR", "192.0.2.1"),
                ("CONTENT_TYPE", "text/plain"),
                ("HTTP_ACCEPT_LANGUAGE", "en"), ("CONTENT_LENGTH", "2"), ("HTTP_HOST", "example.org"), ("HTTP_A", "1"),
                ("SERVER_NAME", "x"),
            ], body: Array("hi".utf8))
        let fields = Array(r.headers).map { "\($0.name): \($0.value)" }
        #expect(
            fields == [
                "X-Forwarded-For: 192.0.2.1", "Content-Type: text/plain", "Accept-Language: en", "Content-Length: 2",
                "Host: example.org", "A: 1",
            ])
        #expect(r.host == "example.org" && r.query["b"] == "c" && r.body == Array("hi".utf8))
    }

    @Test func multiplexedRequests() throws {
        try withFastCGI { _, address in
            let c = try FCGIClient(address)
            let one = FCGIClient.request(id: 1, helloParams)
            let two = FCGIClient.request(id: 2, [("REQUEST_METHOD", "GET"), ("REQUEST_URI", "/hello?name=two")])
            // Interleave the two requests record by record.
            try c.send(Array(one[0..<16]) + Array(two[0..<16]) + Array(one[16...]) + Array(two[16...]))
            let answers = try c.readAnswers([1, 2])
            #expect(answers[1]?.body == "<h1>Hello &lt;TLUG&gt;</h1>")
            #expect(answers[2]?.body == "<h1>Hello two</h1>")
        }
    }

    @Test func managementRecords() throws {
        try withFastCGI { _, address in
            let c = try FCGIClient(address)
            try c.send(
                FCGIClient.record(
                    9, id: 0, FCGIClient.pairs([("FCGI_MAX_CONNS", ""), ("FCGI_MAX_REQS", ""), ("FCGI_MPXS_CONNS", ""), ("OTHER", "")])))
            let r = try #require(try c.readRecord())
            #expect(r.type == 10)
            let text = String(decoding: r.content, as: UTF8.self)
            #expect(text.contains("FCGI_MPXS_CONNS1"))
            #expect(text.contains("FCGI_MAX_CONNS"))
            #expect(!text.contains("OTHER"))
            try c.send(FCGIClient.record(42, id: 0, [1, 2, 3]))
            let u = try #require(try c.readRecord())
            #expect(u.type == 11)
            #expect(u.content.first == 42)
            // Roles other than RESPONDER.
            try c.send(FCGIClient.begin(id: 3, role: 2))
            let end = try #require(try c.readRecord())
            #expect(end.type == 3 && end.id == 3 && end.content[4] == 3, "UNKNOWN_ROLE")
            // DATA is ignored for a responder; ABORT ends a request.
            try c.send(FCGIClient.begin(id: 4) + FCGIClient.record(8, id: 4, [1, 2]) + FCGIClient.record(2, id: 4, []))
            let abort = try #require(try c.readRecord())
            #expect(abort.type == 3 && abort.id == 4)
            // Records for an id with no BEGIN are ignored; the connection still serves.
            try c.send(FCGIClient.record(5, id: 9, [1, 2, 3]) + FCGIClient.request(id: 1, helloParams))
            #expect(try c.readAnswers([1])[1]?.body == "<h1>Hello &lt;TLUG&gt;</h1>")
        }
    }

    @Test func oversizedParamsEndTheRequestAndClose() throws {
        try withFastCGI { _, address in
            let c = try FCGIClient(address)
            let huge = String(repeating: "x", count: 40_000)
            try c.send(FCGIClient.request(id: 1, helloParams + [("HTTP_A", huge), ("HTTP_B", huge)]))
            let a = try #require(try c.readAnswers([1])[1])
            #expect(String(decoding: a.stderr, as: UTF8.self).contains("params larger than"))
            #expect(a.stdout.isEmpty)
            #expect(try c.readRecord() == nil, "closed")
        }
    }

    @Test(
        "malformed records close that connection and the server keeps serving",
        arguments: [
            FCGIClient.record(1, id: 1, [0, 1, 1, 0, 0, 0, 0, 0], version: 2),  // bad version
            FCGIClient.begin(id: 1) + FCGIClient.begin(id: 1),  // second BEGIN, active id
            FCGIClient.begin(id: 1) + FCGIClient.record(4, id: 1, [200, 1, 65]) + FCGIClient.record(4, id: 1, [])
                + FCGIClient.record(5, id: 1, []),  // length past the end
            FCGIClient.begin(id: 1) + FCGIClient.record(4, id: 1, [0xff, 0xff, 0xff, 0xff, 1]) + FCGIClient.record(4, id: 1, [])
                + FCGIClient.record(5, id: 1, []),  // huge length
            [1, 1, 0],  // truncated header, then close
            FCGIClient.record(1, id: 1, [0, 1]),  // short BEGIN
        ])
    func malformed(_ bytes: [UInt8]) throws {
        try withFastCGI { _, address in
            do {
                let c = try FCGIClient(address)
                try c.send(bytes)
                shutdown(c.socket.fd, Int32(SHUT_WR))  // the web server stops sending
                // Either an error answer or a close; never a hang or a crash.
                while let r = try c.readRecord() {
                    if r.type == 3 { break }
                }
            }
            let d = try FCGIClient(address)
            try d.send(FCGIClient.request(id: 1, helloParams))
            #expect(try d.readAnswers([1])[1]?.body == "<h1>Hello &lt;TLUG&gt;</h1>")
        }
    }

    @Test func largeResponseSpansRecords() throws {
        try withFastCGI { _, address in
            let c = try FCGIClient(address)
            try c.send(FCGIClient.request(id: 1, [("REQUEST_METHOD", "GET"), ("REQUEST_URI", "/big?n=200000")]))
            let a = try #require(try c.readAnswers([1])[1])
            #expect(a.body.utf8.count == 200_000)
            for r in a.records { #expect(r.content.count <= 65535) }
        }
    }

    @Test func streamedResponse() throws {
        try withFastCGI { _, address in
            let c = try FCGIClient(address)
            try c.send(FCGIClient.request(id: 1, [("REQUEST_METHOD", "GET"), ("REQUEST_URI", "/stream?n=3")]))
            let a = try #require(try c.readAnswers([1])[1])
            #expect(a.text.contains("X-Accel-Buffering: no\r\n"))
            #expect(a.body == "part 0\npart 1\npart 2\n")
        }
    }

    @Test func requestsInFlightPerConnectionAreCapped() throws {
        try withFastCGI { _, address in
            let c = try FCGIClient(address)
            // 1,000 requests begun and left open, then one more: OVERLOADED.
            var bytes: [UInt8] = []
            for id in 1...1000 { bytes += FCGIClient.begin(id: UInt16(id)) }
            bytes += FCGIClient.begin(id: 1001)
            try c.send(bytes)
            let r = try #require(try c.readRecord())
            #expect(r.type == 3 && r.id == 1001 && r.content[4] == 2, "END_REQUEST with OVERLOADED")
            // Ending one frees a place.
            try c.send(
                FCGIClient.record(4, id: 5, FCGIClient.pairs(helloParams)) + FCGIClient.record(4, id: 5, [])
                    + FCGIClient.record(5, id: 5, []))
            #expect(try c.readAnswers([5])[5]?.body == "<h1>Hello &lt;TLUG&gt;</h1>")
        }
    }

    @Test func peersOutsideFCGIWebServerAddrsAreRefused() throws {
        var config = ServerConfiguration()
        config.loops = 1
        config.fastCGI.allowedPeers = ["192.0.2.1"]
        let server = try Server(
            responder: TestApp.router(), listeners: [.fastCGI(.ipv4(host: "127.0.0.1", port: 0))], configuration: config)
        try server.start()
        defer {
            server.shutdown(grace: 1)
            server.wait()
        }
        let c = try FCGIClient(server.addresses[0])
        try? c.send(FCGIClient.request(id: 1, helloParams))
        #expect((try? c.readRecord()) ?? nil == nil, "closed without an answer")
    }
}
