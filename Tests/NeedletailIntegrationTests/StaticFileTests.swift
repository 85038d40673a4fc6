import NeedletailTestSupport
import Foundation
import Glibc
import NeedletailLoop
import Testing

/// Files from a public folder, over real sockets: sendfile natively, read into records behind
/// nginx FastCGI.
@Suite struct StaticFileTests {
    static func folder() throws -> (dir: String, big: [UInt8]) {
        let dir = makeTempDir("needletail-public")
        try "body { color: red }\n".write(toFile: dir + "/site.css", atomically: true, encoding: .utf8)
        // Larger than a socket buffer, so that sendfile is resumed after EAGAIN.
        let big = (0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 11) }
        try Data(big).write(to: URL(fileURLWithPath: dir + "/big.bin"))
        try FileManager.default.createDirectory(atPath: dir + "/sub", withIntermediateDirectories: true)
        try "<svg xmlns=\"http://www.w3.org/2000/svg\"/>".write(toFile: dir + "/sub/logo.svg", atomically: true, encoding: .utf8)
        try "secret".write(toFile: dir + "/.hidden", atomically: true, encoding: .utf8)
        try "outside".write(toFile: dir + "/../needletail-outside-\(getpid())", atomically: true, encoding: .utf8)
        symlink("/etc/passwd", dir + "/passwd")
        return (dir, big)
    }

    func request(_ port: UInt16, _ text: String) throws -> TestClient.Response {
        let c = try TestClient(.ipv4(host: "127.0.0.1", port: port), timeout: 10)
        try c.send(text)
        return try c.readResponse(headOnly: text.hasPrefix("HEAD"))
    }

    func exercise(port: UInt16, big: [UInt8]) throws {
        let css = try request(port, "GET /static/site.css HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(css.status == 200)
        #expect(css.text == "body { color: red }\n")
        #expect(css.header("content-type") == "text/css; charset=utf-8")
        let etag = try #require(css.header("etag"))
        let lastModified = try #require(css.header("last-modified"))
        #expect(css.header("accept-ranges") == "bytes")
        #expect(try request(port, "GET /static/site.css HTTP/1.1\r\nHost: t\r\nIf-None-Match: \(etag)\r\n\r\n").status == 304)
        #expect(try request(port, "GET /static/site.css HTTP/1.1\r\nHost: t\r\nIf-Modified-Since: \(lastModified)\r\n\r\n").status == 304)
        #expect(try request(port, "GET /static/site.css HTTP/1.1\r\nHost: t\r\nIf-None-Match: \"other\"\r\n\r\n").status == 200)
        let whole = try request(port, "GET /static/big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(whole.status == 200 && whole.body == big, "3 MB through sendfile, resumed after EAGAIN")
        let part = try request(port, "GET /static/big.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=100-199\r\n\r\n")
        #expect(part.status == 206)
        #expect(part.body == Array(big[100..<200]))
        #expect(part.header("content-range") == "bytes 100-199/3000000")
        let tail = try request(port, "GET /static/big.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=-10\r\n\r\n")
        #expect(tail.body == Array(big[(big.count - 10)...]))
        let bad = try request(port, "GET /static/big.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=5000000-\r\n\r\n")
        #expect(bad.status == 416)
        #expect(bad.header("content-range") == "bytes */3000000")
        #expect(
            try request(port, "GET /static/big.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=0-1,5-6\r\n\r\n").status == 200,
            "several ranges: the whole file")
        let head = try request(port, "HEAD /static/sub/logo.svg HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(head.status == 200 && head.header("content-type") == "image/svg+xml")
        #expect(head.header("content-length") == "41")
        for path in [
            "/static/.hidden", "/static/../needletail-outside-\(getpid())", "/static/%2e%2e/needletail-outside-\(getpid())",
            "/static/passwd", "/static/sub", "/static/", "/static/nothing.txt", "/static/sub/../site.css",
        ] {
            #expect(try request(port, "GET \(path) HTTP/1.1\r\nHost: t\r\n\r\n").status == 404, "\(path)")
        }
        #expect(try request(port, "POST /static/site.css HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n").status == 405)
        // The runtime: hashed URL, long cache, 304.
        let rt = try request(port, "GET /_nt/runtime.js HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(rt.status == 200 && rt.header("cache-control")?.contains("immutable") == true)
        #expect(
            try request(port, "GET /_nt/runtime.js HTTP/1.1\r\nHost: t\r\nIf-None-Match: \(rt.header("etag") ?? "")\r\n\r\n").status == 304)
    }

    @Test func nativelyWithSendfile() throws {
        let (dir, big) = try Self.folder()
        let port = freePort()
        let server = try SpawnedProcess(
            demoBinary(), ["serve", "--http", "127.0.0.1:\(port)", "--public", dir, "--data", dir + "-data", "--loops", "1"])
        defer { server.stop() }
        #expect(waitForPort(port))
        try exercise(port: port, big: big)
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/usr/sbin/nginx")))
    func throughNginxFastCGI() throws {
        let (dir, big) = try Self.folder()
        let sock = dir + "-app.sock"
        let app = try demoOnFastCGISocket(sock, ["--public", dir, "--data", dir + "-data", "--loops", "1"])
        defer { app.stop() }
        let port = freePort()
        let nginx = try WebServerProcess.nginxInFront(of: sock, port: port)
        defer { nginx.stop() }
        try exercise(port: port, big: big)
    }
}
