import NeedletailTestSupport
import Foundation
import Glibc
import Testing
import NeedletailLoop
@testable import NeedletailServer

/// Needletail behind real nginx and lighttpd, with the configs shipped in nginx/ and lighttpd/.
@Suite("Behind nginx and lighttpd", .serialized)
struct WebServerTests {
    @Test(.enabled(if: toolAvailable("nginx") || FileManager.default.fileExists(atPath: "/usr/sbin/nginx")))
    func nginxOverUnixSocketAndTCP() throws {
        let dir = makeTempDir("needletail-app")
        let sock = dir + "/app.sock"
        try withFastCGI(unixPath: sock) { _, tcp in
            guard case .ipv4(_, let appPort) = tcp else { return }
            let unixPort = freePort(), tcpPort = freePort()
            let blocks =
                try shippedConfig(
                    "nginx/needletail-unix.conf",
                    replacing: [
                        ("listen 80;", "listen 127.0.0.1:\(unixPort);"), ("listen [::]:80;", ""), ("/run/needletail/app.sock", sock),
                    ]) + "\n"
                + shippedConfig(
                    "nginx/needletail-tcp.conf",
                    replacing: [
                        ("listen 80;", "listen 127.0.0.1:\(tcpPort);"), ("listen [::]:80;", ""), ("127.0.0.1:9000", "127.0.0.1:\(appPort)"),
                        ("upstream needletail {", "upstream needletail_tcp {"),
                        ("fastcgi_pass needletail;", "fastcgi_pass needletail_tcp;"),
                    ])
            let nginx = try WebServerProcess.nginx(serverBlocks: blocks, port: unixPort)
            defer { nginx.stop() }
            #expect(waitForPort(tcpPort))
            for port in [unixPort, tcpPort] {
                let c = try TestClient(.ipv4(host: "127.0.0.1", port: port))
                try c.send("GET /hello?name=%3CTLUG%3E HTTP/1.1\r\nHost: t\r\n\r\n")
                let r = try c.readResponse()
                #expect(r.status == 200)
                #expect(r.text == "<h1>Hello &lt;TLUG&gt;</h1>")
                #expect(r.header("content-type") == "text/html; charset=utf-8")
                // The default field passes through the CGI head (nginx adds its own Server).
                #expect(r.header("x-content-type-options") == "nosniff")
                try c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello")
                #expect(try c.readResponse().text == "hello")
                try c.send("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
                #expect(try c.readResponse().text == "abcde")
                try c.send("GET /info?q=1 HTTP/1.1\r\nHost: example.org:8080\r\nUser-Agent: tester\r\n\r\n")
                let info = try c.readResponse().text
                // Debian's fastcgi_params sends HTTP_HOST as $host: without the port.
                #expect(info == "GET /info /info?q=1 host=example.org remote=127.0.0.1 secure=false ua=tester len=0")
                try c.send("GET /nowhere HTTP/1.1\r\nHost: t\r\n\r\n")
                let nf = try c.readResponse()
                #expect(nf.status == 404)
                #expect(nf.text.contains("404 Not Found"))
                try c.send("GET /live/stream?n=3 HTTP/1.1\r\nHost: t\r\n\r\n")
                #expect(try c.readResponse().text == "part 0\npart 1\npart 2\n")
            }
            #expect(!nginx.errorLog.contains("upstream prematurely closed"), "\(nginx.errorLog)")
        }
    }

    /// The app on TCP behind nginx with the shipped `nginx/needletail-tcp.conf`; `body` gets
    /// nginx's port.
    func withAppBehindNginxTCP(_ body: (UInt16) throws -> Void) throws {
        let dir = makeTempDir("needletail-app")
        try withFastCGI(unixPath: dir + "/app.sock") { _, tcp in
            guard case .ipv4(_, let appPort) = tcp else { return }
            let port = freePort()
            let nginx = try WebServerProcess.nginx(
                serverBlocks: try shippedConfig(
                    "nginx/needletail-tcp.conf",
                    replacing: [
                        ("listen 80;", "listen 127.0.0.1:\(port);"), ("listen [::]:80;", ""), ("127.0.0.1:9000", "127.0.0.1:\(appPort)"),
                    ]), port: port)
            defer { nginx.stop() }
            try body(port)
        }
    }

    @Test(.enabled(if: toolAvailable("wrk")))
    func nginxKeepAlivePoolUnderLoadHasNoStalls() throws {
        try withAppBehindNginxTCP { port in
            let r = try run("wrk", ["-t1", "-c100", "-d10s", "--latency", "http://127.0.0.1:\(port)/hello?name=load"])
            #expect(r.status == 0)
            #expect(r.output.contains("requests in"))
            #expect(!r.output.contains("Non-2xx"), "\(r.output)")
            #expect(!r.output.contains("Socket errors"), "\(r.output)")
            // Max latency: no multi-second stall (php-fpm and one-thread libfcgi show 1 s+ here).
            let maxLine = r.output.split(separator: "\n").first { $0.contains("Latency") && !$0.contains("Distribution") } ?? ""
            let fields = maxLine.split(separator: " ")
            let maxText = fields.count >= 4 ? String(fields[3]) : "?"
            #expect(maxText.hasSuffix("us") || maxText.hasSuffix("ms"), "max latency \(maxText)\n\(r.output)")
        }
    }

    /// Async handlers behind nginx: answered through the FastCGI connection, and a browser
    /// leaving (nginx then closes its upstream connection) cancels the task.
    @Test func asyncHandlersBehindNginxAreAnsweredAndCancelled() throws {
        try withAppBehindNginxTCP { port in
            let c = try TestClient(.ipv4(host: "127.0.0.1", port: port))
            try c.send("GET /async/wait?ms=100 HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try c.readResponse().text == "waited 100 ms")
            let before = TestApp.cancelledTasks.load(ordering: .relaxed)
            do {
                let gone = try TestClient(.ipv4(host: "127.0.0.1", port: port))
                try gone.send("GET /async/hold HTTP/1.1\r\nHost: t\r\n\r\n")
                usleep(200_000)  // (the request reaches the app; no timing is asserted)
            }
            var waited = 0
            while TestApp.cancelledTasks.load(ordering: .relaxed) == before && waited < 500 {
                usleep(10_000)
                waited += 1
            }
            #expect(TestApp.cancelledTasks.load(ordering: .relaxed) > before, "the task saw the browser leave")
            let d = try TestClient(.ipv4(host: "127.0.0.1", port: port))
            try d.send("GET /hello?name=after HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try d.readResponse().text == "<h1>Hello after</h1>")
        }
    }

    @Test func clientAbortMidResponseFreesTheRequest() throws {
        try withAppBehindNginxTCP { port in
            let before = TestApp.cancelledStreams.load(ordering: .relaxed)
            do {
                let c = try TestClient(.ipv4(host: "127.0.0.1", port: port))
                try c.send("GET /live/forever HTTP/1.1\r\nHost: t\r\n\r\n")
                #expect(try c.fill(), "the first event arrives through nginx")
            }  // the browser goes away; nginx closes its upstream connection
            var waited = 0
            while TestApp.cancelledStreams.load(ordering: .relaxed) == before && waited < 300 {
                usleep(10_000)
                waited += 1
            }
            #expect(TestApp.cancelledStreams.load(ordering: .relaxed) > before, "the app saw the abort")
            let d = try TestClient(.ipv4(host: "127.0.0.1", port: port))
            try d.send("GET /hello?name=after HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try d.readResponse().text == "<h1>Hello after</h1>")
        }
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/usr/sbin/lighttpd")))
    func lighttpdOverUnixSocket() throws {
        let dir = makeTempDir("needletail-app")
        let sock = dir + "/app.sock"
        try withFastCGI(unixPath: sock) { _, _ in
            let port = freePort()
            let lighttpd = try WebServerProcess.lighttpd(
                include: try shippedConfig(
                    "lighttpd/needletail-socket.conf",
                    replacing: [
                        ("/run/needletail/app.sock", sock)
                    ]), port: port)
            defer { lighttpd.stop() }
            let c = try TestClient(.ipv4(host: "127.0.0.1", port: port))
            try c.send("GET /hello?name=%3Clighttpd%3E HTTP/1.1\r\nHost: t\r\n\r\n")
            let r = try c.readResponse()
            #expect(r.status == 200, "\(lighttpd.errorLog)")
            #expect(r.text == "<h1>Hello &lt;lighttpd&gt;</h1>")
            try c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nbody")
            #expect(try c.readResponse().text == "body")
            try c.send("GET /info HTTP/1.1\r\nHost: h:\(port)\r\n\r\n")
            #expect(try c.readResponse().text.contains("host=h:\(port)"), "lighttpd keeps the port in HTTP_HOST")
        }
    }
}
