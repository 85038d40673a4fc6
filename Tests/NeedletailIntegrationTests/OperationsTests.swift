import Foundation
import Glibc
import NeedletailLoop
import NeedletailTestSupport
import Testing

/// Running it in production, against the demo binary: compressed answers checked by curl's
/// own decoders (zlib and brotli, not ours), the access log in both paths and across a
/// SIGUSR1 reopen under load, status and metrics against a known load, and the health path
/// during the drain.
@Suite(.serialized) struct OperationsTests {
    func get(_ port: UInt16, _ path: String, _ fields: [String] = [], head: Bool = false) throws -> TestClient.Response {
        let c = try TestClient(.ipv4(host: "127.0.0.1", port: port), timeout: 10)
        try c.send("\(head ? "HEAD" : "GET") \(path) HTTP/1.1\r\nHost: t\r\n" + fields.map { $0 + "\r\n" }.joined() + "\r\n")
        return try c.readResponse(headOnly: head)
    }

    /// `curl --compressed` (which asks for gzip, deflate, br, zstd and decodes what comes).
    func curl(_ port: UInt16, _ path: String, _ extra: [String] = []) throws -> String {
        try run("curl", ["-sS", "--compressed", "http://127.0.0.1:\(port)\(path)"] + extra).output
    }

    func startDemo(_ arguments: [String]) throws -> (SpawnedProcess, UInt16) {
        let port = freePort()
        let demo = try SpawnedProcess(
            demoBinary(), ["serve", "--http", "127.0.0.1:\(port)", "--data", makeTempDir("needletail-ops-data"), "--loops", "2"] + arguments)
        #expect(waitForPort(port))
        return (demo, port)
    }

    @Test(.enabled(if: toolAvailable("curl")))
    func compressedAnswersDecodeToTheIdentityBytes() throws {
        let dir = makeTempDir("needletail-ops-public")
        let js = String(repeating: "function double(x) { return x * 2; }\n", count: 300)
        try js.write(toFile: dir + "/app.js", atomically: true, encoding: .utf8)
        let css = String(repeating: "body { color: #333; margin: 0 auto; }\n", count: 100)
        try css.write(toFile: dir + "/site.css", atomically: true, encoding: .utf8)
        #expect(try run("gzip", ["-k", "-9", dir + "/site.css"]).status == 0)
        let (demo, port) = try startDemo(["--public", dir])
        defer { demo.stop() }

        // A dynamic page: the same bytes whichever encoding (fortunes renders the same every time).
        let identity = try get(port, "/fortunes")
        let gz = try get(port, "/fortunes", ["Accept-Encoding: gzip"])
        #expect(identity.header("content-encoding") == nil && gz.header("content-encoding") == "gzip")
        #expect(gz.header("vary") == "Accept-Encoding" && identity.header("vary") == "Accept-Encoding")
        #expect(gz.body.count < identity.body.count)
        #expect(try curl(port, "/fortunes") == identity.text)
        // HEAD gives the length a GET of the same encoding would.
        let head = try get(port, "/fortunes", ["Accept-Encoding: gzip"], head: true)
        #expect(head.header("content-length") == "\(gz.body.count)" && head.header("content-encoding") == "gzip")
        // Too short to gain: sent as it is.
        #expect(try get(port, "/hello", ["Accept-Encoding: gzip"]).header("content-encoding") == nil)

        // The client runtime: brotli or gzip made once, each with its own ETag, 304 per encoding.
        let runtimePath = "/_nt/runtime.js"
        let plain = try get(port, runtimePath)
        let br = try get(port, runtimePath, ["Accept-Encoding: gzip, br"])
        let gzRuntime = try get(port, runtimePath, ["Accept-Encoding: gzip"])
        #expect(br.header("content-encoding") == "br" && gzRuntime.header("content-encoding") == "gzip")
        #expect(gzRuntime.body.count <= 2048, "the runtime is at most 2 KB gzipped")
        let tags = [plain, br, gzRuntime].compactMap { $0.header("etag") }
        #expect(Set(tags).count == 3, "a distinct ETag per encoding")
        #expect(try get(port, runtimePath, ["Accept-Encoding: gzip", "If-None-Match: \(tags[2])"]).status == 304)
        #expect(try get(port, runtimePath, ["Accept-Encoding: gzip", "If-None-Match: \(tags[0])"]).status == 200)
        #expect(try curl(port, runtimePath) == plain.text)

        // Public files: the .gz sibling (gzip_static), ranges of its bytes; a file without one
        // is gzipped in memory after its first request.
        let sibling = try get(port, "/static/site.css", ["Accept-Encoding: gzip"])
        let onDisk = try Data(contentsOf: URL(fileURLWithPath: dir + "/site.css.gz"))
        #expect(sibling.header("content-encoding") == "gzip" && sibling.body == Array(onDisk))
        let range = try get(port, "/static/site.css", ["Accept-Encoding: gzip", "Range: bytes=0-9"])
        #expect(range.status == 206 && range.body == Array(onDisk.prefix(10)))
        #expect(try curl(port, "/static/site.css") == css)
        _ = try get(port, "/static/app.js", ["Accept-Encoding: gzip"])
        var memory: TestClient.Response? = nil
        for _ in 0..<100 {
            let r = try get(port, "/static/app.js", ["Accept-Encoding: gzip"])
            if r.header("content-encoding") == "gzip" {
                memory = r
                break
            }
            usleep(20_000)
        }
        #expect(memory != nil, "gzipped in memory after the first request")
        #expect(try curl(port, "/static/app.js") == js)
        #expect(try get(port, "/static/app.js").body == Array(js.utf8), "identity for a client that does not accept gzip")
    }

    static let combined = try! NSRegularExpression(
        pattern: #"^(\S+) - - \[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] "([A-Z]+) (\S+) HTTP/1\.[01]" (\d{3}) (\d+) "([^"]*)" "([^"]*)" (\d+) (\d+)$"#)

    static func parse(_ line: String) -> (method: String, target: String, status: Int, bytes: Int, agent: String)? {
        let range = NSRange(line.startIndex..., in: line)
        guard let m = combined.firstMatch(in: line, range: range) else { return nil }
        func group(_ i: Int) -> String { String(line[Range(m.range(at: i), in: line)!]) }
        return (group(2), group(3), Int(group(4))!, Int(group(5))!, group(7))
    }

    /// A refused request's line: `"-"` for the request, the Referer and the User-Agent (timed).
    static func isRefusedLine(_ line: String, status: Int) -> Bool {
        let refused = try! NSRegularExpression(
            pattern: #"^127\.0\.0\.1 - - \[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] "-" (\d{3}) \d+ "-" "-" \d+ \d+$"#)
        guard let m = refused.firstMatch(in: line, range: NSRange(line.startIndex..., in: line)) else { return false }
        return Int(line[Range(m.range(at: 1), in: line)!]) == status
    }

    static func lines(_ path: String) -> [String] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    @Test(.enabled(if: toolAvailable("cgi-fcgi")))
    func accessLogInBothPathsAndAcrossAReopen() throws {
        let dir = makeTempDir("needletail-ops-log")
        let log = dir + "/access.log"
        let fcgiPort = freePort()
        let (demo, port) = try startDemo(["--fastcgi", "127.0.0.1:\(fcgiPort)", "--access-log", log, "--access-log-timed"])
        defer { demo.stop() }
        #expect(waitForPort(fcgiPort))
        _ = try get(port, "/hello?name=%22quoted%22", ["User-Agent: agent \"with\" quotes", "Referer: http://example.org/"])
        let fcgi = try runWithEnvironment(
            "cgi-fcgi", ["-bind", "-connect", "127.0.0.1:\(fcgiPort)"],
            env: ["REQUEST_METHOD": "GET", "REQUEST_URI": "/hello?name=fastcgi", "REMOTE_ADDR": "192.0.2.7", "SERVER_PROTOCOL": "HTTP/1.1"])
        #expect(fcgi.output.hasSuffix("<h1>Hello fastcgi</h1>"))
        // A request whose handler suspends is logged when it answers, with the time it waited.
        #expect(try get(port, "/wait?ms=40").status == 200)
        // A request the codec refuses before it is parsed is logged too, as nginx logs its 400s.
        let garbled = try TestClient(.ipv4(host: "127.0.0.1", port: port), timeout: 10)
        try garbled.send("GET / HTTP/1.1\r\nHost: t\r\nBad Name: x\r\n\r\n")
        #expect(try garbled.readResponse().status == 400)
        usleep(1_500_000)  // flushed at least once a second
        // The requests may run on different loops, whose buffers flush in either order:
        // find each line by its target.
        let first = Self.lines(log)
        #expect(first.count == 4, "\(first)")
        #expect(first.contains { Self.isRefusedLine($0, status: 400) }, "\(first)")
        let waited = try #require(first.first { Self.parse($0)?.target == "/wait?ms=40" }, "\(first)")
        #expect(Self.parse(waited)?.status == 200)
        let micros = waited.split(separator: " ").dropLast().last.flatMap { Int($0) } ?? 0
        #expect(micros >= 40_000, "the line's time covers the wait: \(waited)")
        let native = try #require(first.compactMap(Self.parse).first { $0.target.hasPrefix("/hello?name=%22") }, "\(first)")
        #expect(native.target == "/hello?name=%22quoted%22" && native.status == 200 && native.agent == #"agent \x22with\x22 quotes"#)
        let viaFastCGI = try #require(first.first { Self.parse($0)?.target == "/hello?name=fastcgi" }, "\(first)")
        #expect(viaFastCGI.hasPrefix("192.0.2.7 - - ["))

        // Under load from 4 clients, rename the file and signal: every request is in one of
        // the two files, each line whole.
        let rotated = dir + "/access.log.1"
        let sent = Counter()
        let stop = Counter()
        let clients = (0..<4).map { i in
            Thread {
                while stop.value == 0 {
                    if (try? get(port, "/hello?name=load\(i)").status) == 200 { sent.add() }
                }
            }
        }
        for t in clients { t.start() }
        usleep(300_000)
        #expect(rename(log, rotated) == 0)
        kill(demo.pid, SIGUSR1)
        usleep(500_000)
        stop.add()
        usleep(300_000)
        demo.stop()  // the last lines are written at stop
        let all = Self.lines(rotated) + Self.lines(log)
        #expect(!Self.lines(log).isEmpty, "lines after the reopen go to the new file")
        #expect(all.allSatisfy { Self.parse($0) != nil || Self.isRefusedLine($0, status: 400) }, "no torn line")
        #expect(all.count == 4 + sent.value, "\(all.count) lines for \(4 + sent.value) requests")
    }

    @Test func statusAndMetricsCountAKnownLoad() throws {
        let (demo, port) = try startDemo(["--status-path", "/status", "--metrics-path", "/metrics", "--health-path", "/healthz"])
        defer { demo.stop() }
        for _ in 0..<50 { #expect(try get(port, "/hello").status == 200) }
        for _ in 0..<7 { #expect(try get(port, "/no-such-page").status == 404) }
        let metrics = try get(port, "/metrics").text
        #expect(metrics.contains("needletail_requests_total{route=\"/hello\",status=\"200\"} 50\n"))
        #expect(metrics.contains("needletail_requests_total{route=\"unmatched\",status=\"404\"} 7\n"))
        #expect(metrics.contains("needletail_request_duration_seconds_count{route=\"/hello\",status=\"200\"} 50\n"))
        #expect(metrics.contains("needletail_request_duration_seconds_bucket{route=\"/hello\",status=\"200\",le=\"+Inf\"} 50\n"))
        #expect(metrics.contains("needletail_loops 2\n"))
        let json = try get(port, "/status?json")
        #expect(json.header("content-type") == "application/json")
        let status = try #require(try JSONSerialization.jsonObject(with: Data(json.body)) as? [String: Any])
        // 50 + 7, and the /metrics request before this one.
        #expect(status["requests_served"] as? Int == 58)
        #expect(status["responses_4xx"] as? Int == 7)
        #expect(status["loops"] as? Int == 2)
        #expect(try get(port, "/status").text.contains("requests served:"))
    }

    @Test func healthTurns503OnSigtermBeforeTheListenerCloses() throws {
        let (demo, port) = try startDemo(["--health-path", "/healthz", "--drain-seconds", "2"])
        defer { demo.stop() }
        #expect(try get(port, "/healthz").status == 200)
        kill(demo.pid, SIGTERM)
        usleep(300_000)
        let draining = try get(port, "/healthz")
        #expect(draining.status == 503, "503 while draining, and the listener still accepts")
        #expect(try get(port, "/hello").status == 200, "everything else is served as usual")
        let end = monotonicSeconds() + 6
        while demo.isRunning && monotonicSeconds() < end { usleep(50_000) }
        #expect(!demo.isRunning, "stopped once the drain was over")
    }
}

/// A counter shared by the load threads.
final class Counter: @unchecked Sendable {
    private var lock = pthread_mutex_t()
    private var n = 0
    init() { pthread_mutex_init(&lock, nil) }
    var value: Int {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        return n
    }
    func add() {
        pthread_mutex_lock(&lock)
        n += 1
        pthread_mutex_unlock(&lock)
    }
}
