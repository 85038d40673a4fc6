import NeedletailTestSupport
import Glibc
import Testing
import NeedletailBytes
@testable import NeedletailLoop
import NeedletailHTTP
@testable import NeedletailServer

private let hello = "GET /hello?name=%3CTLUG%3E HTTP/1.1\r\nHost: t\r\n\r\n"

@Suite("Native server over real sockets", .serialized)
struct ServerSocketTests {
    @Test func helloAndKeepAlive() throws {
        try withServer { _, address in
            let c = try TestClient(address)
            for _ in 0..<3 {
                try c.send(hello)
                let r = try c.readResponse()
                #expect(r.status == 200)
                #expect(r.text == "<h1>Hello &lt;TLUG&gt;</h1>")
                #expect(r.header("content-type") == "text/html; charset=utf-8")
                #expect(r.header("content-length") == "27")
                #expect(r.header("date")?.hasSuffix(" GMT") == true)
                #expect(r.header("connection") == nil)
                // Security defaults: nosniff on every answer, no Server field (no version shown).
                #expect(r.header("x-content-type-options") == "nosniff")
                #expect(r.header("server") == nil)
            }
        }
    }

    @Test func defaultFieldsAreConfigurableAndNeverDoubled() throws {
        let fields = DefaultFields(DefaultFields.standard.fields + [("Server", "needletail"), ("Bad\r\nField", "x"), ("X-Ok", "a\nb")])
        #expect(fields.fields.map(\.name) == ["X-Content-Type-Options", "Server"], "unsafe fields are left out")
        let out = ByteBuffer(capacity: 256)
        var response = Response.text("hi")
        response.addHeader("x-content-type-options", "nosniff")
        HTTPResponseEncoder.encodeHead(
            response, framing: .length(2), keepAlive: true, version: .http1_1, date: [],
            defaults: fields, into: out, dropped: { _ in })
        let head = String(decoding: out.bytes, as: UTF8.self)
        #expect(head.components(separatedBy: "nosniff").count == 2, "the response's own field wins: \(head)")
        #expect(head.contains("Server: needletail\r\n"))
    }

    @Test func fixedFieldsAreSentOnceAndOverrideDefaults() throws {
        let fixed = FixedFields([("Server", "page"), ("Cache-Control", "no-store"), ("Bad Name", "x"), ("X-Ok", "a\rb")])
        #expect(fixed.fields.map(\.name) == ["Server", "Cache-Control"])
        #expect(fixed.refused == ["Bad Name", "X-Ok"])
        #expect(!fixed.concernsEncoding && FixedFields([("Vary", "Cookie")]).concernsEncoding)
        let defaults = DefaultFields([("Server", "needletail"), ("X-Content-Type-Options", "nosniff")])
        var response = Response.text("hi")
        response.addHeader("X-Own", "1")
        response.fixedFields = fixed
        #expect(response.allHeaders.map(\.name) == ["X-Own", "Server", "Cache-Control"])
        let out = ByteBuffer(capacity: 256)
        HTTPResponseEncoder.encodeHead(
            response, framing: .length(2), keepAlive: true, version: .http1_1, date: [],
            defaults: defaults, into: out, dropped: { _ in })
        let head = String(decoding: out.bytes, as: UTF8.self)
        #expect(head.contains("X-Own: 1\r\nServer: page\r\nCache-Control: no-store\r\n"), "\(head)")
        #expect(!head.contains("needletail") && head.contains("X-Content-Type-Options: nosniff\r\n"), "a fixed field wins over a default")
        response.unfixFields()
        #expect(response.fixedFields == nil && response.headers.map(\.name) == ["X-Own", "Server", "Cache-Control"])
    }

    @Test func http10ClosesUnlessKeepAlive() throws {
        try withServer { _, address in
            let c = try TestClient(address)
            try c.send("GET /hello HTTP/1.0\r\n\r\n")
            let r = try c.readResponse()
            #expect(r.header("connection") == "close")
            #expect(c.isClosedByServer())
            let k = try TestClient(address)
            try k.send("GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            #expect(try k.readResponse().header("connection") == "keep-alive")
            try k.send("GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            #expect(try k.readResponse().status == 200)
        }
    }

    @Test func connectionCloseIsHonoured() throws {
        try withServer { _, address in
            let c = try TestClient(address)
            try c.send("GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            #expect(try c.readResponse().header("connection") == "close")
            #expect(c.isClosedByServer())
        }
    }

    @Test func headHasLengthButNoBody() throws {
        try withServer { _, address in
            let c = try TestClient(address)
            try c.send("HEAD /hello?name=abc HTTP/1.1\r\nHost: t\r\n\r\n" + hello)
            let h = try c.readResponse(headOnly: true)
            #expect(h.status == 200)
            #expect(h.header("content-length") == "18")
            // The next response starts right after the head: no body bytes in between.
            let g = try c.readResponse()
            #expect(g.text == "<h1>Hello &lt;TLUG&gt;</h1>")
        }
    }

    @Test func hundredPipelinedRequestsInOneWrite() throws {
        try withServer { _, address in
            let c = try TestClient(address)
            var batch = ""
            for i in 0..<100 { batch += "GET /hello?name=\(i) HTTP/1.1\r\nHost: t\r\n\r\n" }
            try c.send(batch)
            for i in 0..<100 {
                let r = try c.readResponse()
                #expect(r.text == "<h1>Hello \(i)</h1>")
            }
        }
    }

    @Test func tenThousandSequentialRequestsOnOneConnection() throws {
        try withServer { _, address in
            let c = try TestClient(address)
            var ok = 0
            for i in 0..<10_000 {
                try c.send("GET /hello?name=\(i) HTTP/1.1\r\nHost: t\r\n\r\n")
                if try c.readResponse().text == "<h1>Hello \(i)</h1>" { ok += 1 }
            }
            #expect(ok == 10_000)
        }
    }

    @Test func thousandConcurrentConnections() throws {
        try withServer(loops: 2) { _, address in
            var clients: [TestClient] = []
            for _ in 0..<1000 { clients.append(try TestClient(address)) }
            for (i, c) in clients.enumerated() { try c.send("GET /hello?name=\(i) HTTP/1.1\r\nHost: t\r\n\r\n") }
            var ok = 0
            for (i, c) in clients.enumerated() where try c.readResponse().text == "<h1>Hello \(i)</h1>" { ok += 1 }
            #expect(ok == 1000)
        }
    }

    @Test func requestBodies() throws {
        try withServer { _, address in
            let c = try TestClient(address)
            try c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello")
            #expect(try c.readResponse().text == "hello")
            try c.send(
                "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nX-Checksum: 99\r\n\r\n"
            )
            let r = try c.readResponse()
            #expect(r.text == "abcde")
            #expect(r.header("x-trailer-checksum") == "99")
            // A body that arrives in many small writes.
            let big = [UInt8](repeating: 120, count: 300_000)
            try c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: \(big.count)\r\n\r\n")
            for i in stride(from: 0, to: big.count, by: 10_000) { try c.send(Array(big[i..<min(i + 10_000, big.count)])) }
            #expect(try c.readResponse().body == big)
        }
    }

    @Test func expectContinue() throws {
        try withServer { _, address in
            let c = try TestClient(address)
            try c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
            let interim = try c.readResponse()
            #expect(interim.status == 100)
            try c.send("data")
            #expect(try c.readResponse().text == "data")
        }
    }

    @Test func oversizedBodyGets413AndTheAnswerArrives() throws {
        var limits = HTTPLimits()
        limits.maxBodyBytes = 1000
        try withServer(limits: limits) { _, address in
            let c = try TestClient(address)
            // Head and part of a body that is too large: the 413 must not be lost to a reset.
            try c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5000000\r\n\r\n" + String(repeating: "z", count: 60_000))
            let r = try c.readResponse()
            #expect(r.status == 413)
            #expect(r.header("connection") == "close")
        }
    }

    @Test(
        "malformed requests get their status and the connection closes",
        arguments: [
            ("GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
            ("GET / HTTP/1.1\r\nHost: t\r\nX: a\r\n b\r\n\r\n", 400),
            ("GET /" + String(repeating: "a", count: 9000) + " HTTP/1.1\r\n\r\n", 414),
            ("GET / HTTP/1.1\r\nHost: t\r\nX: " + String(repeating: "a", count: 9000) + "\r\n\r\n", 431),
            ("GET / HTTP/3.0\r\nHost: t\r\n\r\n", 505),
            ("BREW / HTTP/1.1\r\nHost: t\r\n\r\n", 501),
            ("GET / HTTP/1.1\r\nHost: t\r\n\u{0}\r\n\r\n", 400),
        ])
    func malformed(_ request: String, _ status: Int) throws {
        try withServer { _, address in
            let c = try TestClient(address)
            try c.send(request)
            let r = try c.readResponse()
            #expect(r.status == status)
            #expect(r.header("connection") == "close")
            #expect(c.isClosedByServer())
            // The server keeps serving others.
            let d = try TestClient(address)
            try d.send(hello)
            #expect(try d.readResponse().status == 200)
        }
    }

    @Test func routerAnswers404And405() throws {
        try withServer { _, address in
            let c = try TestClient(address)
            try c.send("GET /nowhere HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try c.readResponse().status == 404)
            try c.send("DELETE /hello HTTP/1.1\r\nHost: t\r\n\r\n")
            let r = try c.readResponse()
            #expect(r.status == 405)
            #expect(r.header("allow") == "GET, HEAD")
        }
    }

    @Test func repeatedHeadersAndAbsoluteForm() throws {
        try withServer { _, address in
            let c = try TestClient(address)
            try c.send("GET /headers?name=X-A HTTP/1.1\r\nHost: h1\r\nx-a: 1\r\nX-A: 2\r\n\r\n")
            #expect(try c.readResponse().text == "1|2\nh1")
            try c.send("GET http://other:81/headers?name=x-a HTTP/1.1\r\nHost: h1\r\nX-A: 3\r\n\r\n")
            #expect(try c.readResponse().text == "3\nother:81")
        }
    }

    @Test func unsafeResponseHeaderIsDropped() throws {
        try withServer { _, address in
            let c = try TestClient(address)
            try c.send("GET /badheader HTTP/1.1\r\nHost: t\r\n\r\n")
            let r = try c.readResponse()
            #expect(r.header("x-evil") == nil)
            #expect(r.header("set-cookie") == nil)
            #expect(r.header("x-good") == "fine")
        }
    }

    @Test func largeAndStaticBodies() throws {
        try withServer { _, address in
            let c = try TestClient(address)
            try c.send("GET /big?n=3000000 HTTP/1.1\r\nHost: t\r\n\r\n")
            let r = try c.readResponse()
            #expect(r.body.count == 3_000_000)
            #expect(r.body[2_999_999] == UInt8(97 + 2_999_999 % 26))
            try c.send("GET /static HTTP/1.1\r\nHost: t\r\n\r\n")
            let s = try c.readResponse()
            #expect(s.body.count == 4096 + 11)
            #expect(s.text.hasSuffix("&lt;end&gt;"))
        }
    }

    @Test func slowClientHitsHeaderTimeout() throws {
        var limits = HTTPLimits()
        limits.headerTimeout = 1
        try withServer(limits: limits) { _, address in
            let c = try TestClient(address, timeout: 5)
            let request = Array("GET /hello HTTP/1.1\r\nHost: t\r\nX-Slow: ".utf8) + [UInt8](repeating: 120, count: 100)
            var sent = 0
            var failed = false
            let start = monotonicSeconds()
            // One byte per 100 ms: never a whole head within the timeout.
            for b in request {
                do { try c.send([b]) } catch { failed = true; break }
                sent += 1
                usleep(100_000)
                if monotonicSeconds() - start > 4 { break }
            }
            let elapsed = monotonicSeconds() - start
            let r = try? c.readResponse()
            #expect(failed || r?.status == 408)
            #expect(elapsed < 4, "closed after \(elapsed) s and \(sent) bytes")
        }
    }

    @Test func clientThatNeverReadsDoesNotGrowMemory() throws {
        try withServer { _, address in
            let before = residentBytes()
            let c = try TestClient(address, timeout: 1)
            let flags = fcntl(c.fd, F_GETFL)
            _ = fcntl(c.fd, F_SETFL, flags | O_NONBLOCK)
            // Each request asks for 256 KiB; send requests for ~2.5 GB of answers and read none.
            let request = Array("GET /big?n=262144 HTTP/1.1\r\nHost: t\r\n\r\n".utf8)
            var requests = 0
            var stalls = 0
            while requests < 10_000 && stalls < 20 {
                let n = request.withUnsafeBytes { Glibc.send(c.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n == request.count { requests += 1; stalls = 0 } else { stalls += 1; usleep(50_000) }
            }
            let grown = residentBytes() - before
            #expect(grown < 64 << 20, "resident memory grew by \(grown >> 20) MiB after \(requests) unread requests")
            // Another client is still served.
            let d = try TestClient(address)
            try d.send(hello)
            #expect(try d.readResponse().status == 200)
        }
    }

    @Test func gracefulStopFinishesInFlightRequests() throws {
        var config = ServerConfiguration()
        config.loops = 1
        let server = try Server(responder: TestApp.router(), http: [.ipv4(host: "127.0.0.1", port: 0)], configuration: config)
        try server.start()
        let address = server.addresses[0]
        let idle = try TestClient(address)
        try idle.send(hello)
        _ = try idle.readResponse()
        let busy = try TestClient(address)
        try busy.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n01234")
        usleep(100_000)
        server.shutdown(grace: 5)
        usleep(200_000)
        #expect(idle.isClosedByServer(), "idle keep-alive connection closed at once")
        try busy.send("56789")
        let r = try busy.readResponse()
        #expect(r.text == "0123456789")
        #expect(r.header("connection") == "close")
        server.wait()
        #expect(throws: (any Error).self) { try TestClient(address) }
    }

    @Test func ipv6AndUnixListeners() throws {
        let path = "/tmp/needletail-test-\(getpid()).sock"
        try withServer(addresses: [.ipv6(host: "::1", port: 0), .unix(path: path)]) { server, v6 in
            let a = try TestClient(v6)
            try a.send(hello)
            #expect(try a.readResponse().status == 200)
            let u = try TestClient(.unix(path: path))
            try u.send(hello)
            #expect(try u.readResponse().text == "<h1>Hello &lt;TLUG&gt;</h1>")
        }
        #expect(access(path, F_OK) != 0, "socket file removed at stop")
    }

    @Test func portInUseIsAClearError() throws {
        try withServer { _, address in
            do {
                _ = try Server(responder: TestApp.router(), http: [address])
                Issue.record("second bind succeeded")
            } catch {
                #expect("\(error)".contains("address already in use"))
            }
        }
    }

    @Test func liveUnixSocketIsNotReplacedButStaleOneIs() throws {
        let path = "/tmp/needletail-stale-\(getpid()).sock"
        try withServer(addresses: [.unix(path: path)]) { _, _ in
            #expect(throws: SocketError.self) { try ListeningSocket.bind(.unix(path: path)) }
        }
        // Leave a stale socket file behind (bound, never closed cleanly).
        let s = try ListeningSocket.bind(.unix(path: path))
        s.close(unlinking: false)
        #expect(access(path, F_OK) == 0)
        let again = try ListeningSocket.bind(.unix(path: path))
        again.close(unlinking: true)
    }
}
