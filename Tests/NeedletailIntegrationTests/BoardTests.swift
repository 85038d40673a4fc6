import NeedletailTestSupport
import Foundation
import Glibc
import NeedletailLoop
import Testing

/// The demo's message board over real sockets: durability, and live updates through lighttpd.
@Suite struct BoardTests {
    struct Visitor {
        let port: UInt16
        var cookie = ""

        /// GETs `path`, keeping the session cookie; returns the body.
        mutating func get(_ path: String) throws -> String {
            let c = try TestClient(.ipv4(host: "127.0.0.1", port: port))
            try c.send("GET \(path) HTTP/1.1\r\nHost: t\r\n\(cookie.isEmpty ? "" : "Cookie: \(cookie)\r\n")Connection: close\r\n\r\n")
            let r = try c.readResponse()
            if let set = r.header("set-cookie") { cookie = String(set.split(separator: ";")[0]) }
            return r.text
        }

        /// Opens the board of `forum`, then a connection whose long-poll on it is parked
        /// (version 0: a fresh store); returns the page's view id and that connection.
        mutating func park(on forum: String) throws -> (view: String, poll: TestClient) {
            let page = try get("/board?forum=\(forum)")
            guard let r = page.range(of: "data-nt-view=\"") else { throw TestClient.Failure(description: "no view id") }
            let view = String(page[r.upperBound...].prefix { $0 != "\"" })
            let poll = try TestClient(.ipv4(host: "127.0.0.1", port: port), timeout: 10)
            try poll.send("GET /_nt/poll?v=\(view)&c=forum:\(forum)%7C0 HTTP/1.1\r\nHost: t\r\nCookie: \(cookie)\r\n\r\n")
            usleep(200_000)
            return (view, poll)
        }

        /// Posts the board's form on `page` with `text`; returns the status.
        func post(on page: String, _ text: String) throws -> Int {
            guard let r = page.range(of: "action=\"/_nt/a/") else { throw TestClient.Failure(description: "no action form") }
            let action = "/_nt/a/" + page[r.upperBound...].prefix { $0 != "\"" }
            let body = "text=" + text.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
            let c = try TestClient(.ipv4(host: "127.0.0.1", port: port))
            try c.send(
                "POST \(action) HTTP/1.1\r\nHost: t\r\nCookie: \(cookie)\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
            )
            return try c.readResponse().status
        }
    }

    /// A post acknowledged (the redirect came back) survives kill -9 and a restart.
    @Test func acknowledgedPostsSurviveKill9() throws {
        let data = makeTempDir("needletail-board")
        let port = freePort()
        var server: SpawnedProcess? = try SpawnedProcess(
            demoBinary(), ["serve", "--http", "127.0.0.1:\(port)", "--data", data, "--loops", "1"])
        #expect(waitForPort(port))
        var v = Visitor(port: port)
        var texts: [String] = []
        for i in 0..<5 {
            let page = try v.get("/board?forum=Ubuntu")
            let text = "durable \(i) <\(Int.random(in: 0..<1_000_000))>"
            #expect(try v.post(on: page, text) == 303)
            texts.append(text)
        }
        kill(server!.pid, SIGKILL)
        server!.stop()
        server = try SpawnedProcess(demoBinary(), ["serve", "--http", "127.0.0.1:\(port)", "--data", data, "--loops", "1"])
        defer { server?.stop() }
        #expect(waitForPort(port))
        var fresh = Visitor(port: port)
        let page = try fresh.get("/board?forum=Ubuntu")
        for t in texts {
            #expect(
                page.contains(t.replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")),
                "\(t) after kill -9")
        }
    }

    /// Read interest is dropped lazily: a parked poll keeps EPOLLIN until input arrives. A
    /// client that sends more while its poll is parked must not make the loop spin on it
    /// (level-triggered), and the poll is still answered, then the request after it.
    @Test func inputWhileParkedDoesNotSpin() throws {
        let data = makeTempDir("needletail-board")
        let port = freePort()
        let server = try SpawnedProcess(demoBinary(), ["serve", "--http", "127.0.0.1:\(port)", "--data", data, "--loops", "1"])
        defer { server.stop() }
        #expect(waitForPort(port))
        var watcher = Visitor(port: port)
        let poll = try watcher.park(on: "Debian").poll
        try poll.send("GET /hello?name=next HTTP/1.1\r\nHost: t\r\n\r\n")  // arrives while parked
        usleep(200_000)
        let before = cpuTicks(server.pid)
        usleep(1_000_000)
        let used = cpuTicks(server.pid) - before
        #expect(used < 20, "the loop does not spin on input it does not want yet (\(used) ticks in 1 s)")
        var poster = Visitor(port: port)
        let posterPage = try poster.get("/board?forum=Debian")  // (first: `post` reads the cookie it sets)
        #expect(try poster.post(on: posterPage, "wake") == 303)
        let answer = try poll.readResponse()
        #expect(answer.status == 200 && answer.text.contains("wake"), "the parked poll is answered")
        #expect(try poll.readResponse().text == "<h1>Hello next</h1>", "then the request that came while it was parked")
    }

    /// Behind lighttpd FastCGI a parked long-poll is answered with the new post.
    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/usr/sbin/lighttpd")))
    func longPollThroughLighttpd() throws {
        let data = makeTempDir("needletail-board")
        let sock = data + "/app.sock"
        let app = try demoOnFastCGISocket(sock, ["--data", data, "--loops", "1"])
        defer { app.stop() }
        let port = freePort()
        let lighttpd = try WebServerProcess.lighttpd(
            include: try shippedConfig(
                "lighttpd/needletail-socket.conf",
                replacing: [
                    ("/run/needletail/app.sock", sock)
                ]), port: port)
        defer { lighttpd.stop() }
        var watcher = Visitor(port: port)
        let (view, poll) = try watcher.park(on: "Gentoo")
        var poster = Visitor(port: port)
        let text = "through lighttpd \(Int.random(in: 0..<1_000_000))"
        let posterPage = try poster.get("/board?forum=Gentoo")
        let status = try poster.post(on: posterPage, text)
        #expect(status == 303, "\(lighttpd.errorLog)")
        let answer = try poll.readResponse()
        #expect(answer.status == 200, "\(lighttpd.errorLog)")
        #expect(answer.text.contains(text))
        #expect(answer.text.contains("data-nt-versions=\"forum:Gentoo|1\""))

        // Server-sent events through lighttpd: the first event at once, then the next post.
        let curl = try SpawnedProcess(
            "/usr/bin/curl",
            [
                "-sN", "--max-time", "4", "-H", "Cookie: \(watcher.cookie)",
                "http://127.0.0.1:\(port)/_nt/events?v=\(view)&c=forum:Gentoo%7C1",
            ], capture: .stdout)
        usleep(500_000)
        let second = "by server-sent events \(Int.random(in: 0..<1_000_000))"
        let again = try poster.get("/board?forum=Gentoo")
        #expect(try poster.post(on: again, second) == 303)
        let stream = curl.readOutput()
        curl.waitForExit()
        #expect(stream.hasPrefix("data: <template data-nt-versions=\"forum:Gentoo|1\"></template>\n\n"), "\(stream.prefix(200))")
        #expect(stream.contains(second), "the post arrives as an event through lighttpd")
        #expect(stream.contains("forum:Gentoo|2"))
    }
}
