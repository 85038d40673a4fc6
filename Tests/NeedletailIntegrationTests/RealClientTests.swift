import NeedletailTestSupport
import Foundation
import Testing
import NeedletailLoop
@testable import NeedletailServer

/// Runs a program and returns its exit status and combined output.
@Suite("Real HTTP clients against the native server", .serialized)
struct RealClientTests {
    @Test(.enabled(if: toolAvailable("curl")))
    func curl() throws {
        try withServer { _, address in
            let base = "http://\(address)"
            let r = try run("curl", ["-sS", "-i", "\(base)/hello?name=%3Ccurl%3E", "\(base)/hello?name=again"])
            #expect(r.status == 0)
            #expect(r.output.contains("<h1>Hello &lt;curl&gt;</h1>"))
            #expect(r.output.contains("<h1>Hello again</h1>"))
            let old = try run("curl", ["-sS", "--http1.0", "\(base)/hello?name=ten"])
            #expect(old.output == "<h1>Hello ten</h1>")
            let post = try run("curl", ["-sS", "-H", "Transfer-Encoding: chunked", "--data-binary", "chunky", "\(base)/echo"])
            #expect(post.output == "chunky")
            let head = try run("curl", ["-sS", "-I", "\(base)/hello"])
            #expect(head.output.contains("Content-Length: 20"))
        }
    }

    @Test(.enabled(if: toolAvailable("ab")))
    func apacheBench() throws {
        try withServer { _, address in
            let r = try run("ab", ["-q", "-n", "2000", "-c", "50", "http://\(address)/hello?name=ab"])
            #expect(r.status == 0, "\(r.output)")
            #expect(r.output.contains("Complete requests:      2000"))
            #expect(r.output.contains("Failed requests:        0"))
            let k = try run("ab", ["-q", "-k", "-n", "2000", "-c", "50", "http://\(address)/hello?name=ab"])
            #expect(k.output.contains("Keep-Alive requests:    2000"))
            #expect(k.output.contains("Failed requests:        0"))
        }
    }

    @Test(.enabled(if: toolAvailable("wrk")))
    func wrk() throws {
        try withServer(loops: 2) { _, address in
            let r = try run("wrk", ["-t1", "-c64", "-d1s", "http://\(address)/hello?name=wrk"])
            #expect(r.status == 0)
            #expect(!r.output.contains("Non-2xx"), "\(r.output)")
            #expect(!r.output.contains("Socket errors"), "\(r.output)")
            #expect(r.output.contains("requests in"))
        }
    }
}

@Suite("The demo command line", .serialized)
struct DemoCommandTests {
    @Test func helpAndPortTaken() throws {
        let help = try run(demoBinary(), ["serve", "--help"])
        #expect(help.status == 0)
        #expect(help.output.contains("--http"))
        #expect(help.output.contains("--loops"))
        try withServer { _, address in
            let r = try run(demoBinary(), ["serve", "--http", "\(address)"])
            #expect(r.status != 0)
            #expect(r.output.contains("address already in use"), "\(r.output)")
        }
        let bad = try run(demoBinary(), ["serve", "--http", "nonsense"])
        #expect(bad.status != 0)
        #expect(bad.output.contains("HOST:PORT"))
    }

    @Test func servesAndStopsOnSIGTERM() throws {
        let port = 20000 + Int(getpid() % 10000)
        let p = try SpawnedProcess(demoBinary(), ["serve", "--http", "127.0.0.1:\(port)", "--loops", "2"], capture: .stderr)
        var served = false
        for _ in 0..<50 {
            if let c = try? TestClient(.ipv4(host: "127.0.0.1", port: UInt16(port))) {
                try c.send("GET /hello?name=demo HTTP/1.1\r\nHost: t\r\n\r\n")
                served = try c.readResponse().text == "<h1>Hello demo</h1>"
                break
            }
            usleep(100_000)
        }
        #expect(served)
        kill(p.pid, SIGTERM)
        let log = p.readOutput()
        #expect(p.waitForExit() == 0)
        #expect(log.contains("listening on http://127.0.0.1:\(port)"))
        #expect(log.contains("SIGTERM"))
    }
}

@Suite("The libfcgi compatibility responder", .serialized)
struct LibFCGITests {
    @Test(.enabled(if: toolAvailable("cgi-fcgi")))
    func servesThroughLibfcgi() throws {
        let path = "/tmp/needletail-libfcgi-\(getpid()).sock"
        let p = try SpawnedProcess(demoBinary(), ["serve", "--fastcgi", "unix:\(path)", "--fastcgi-impl", "libfcgi", "--loops", "1"])
        for _ in 0..<50 where access(path, F_OK) != 0 { usleep(100_000) }
        let get = try runWithEnvironment(
            "cgi-fcgi", ["-bind", "-connect", path],
            env: ["REQUEST_METHOD": "GET", "REQUEST_URI": "/hello?name=%3Clib%3E", "QUERY_STRING": "name=%3Clib%3E"])
        #expect(get.output.contains("Status: 200 OK"))
        #expect(get.output.hasSuffix("<h1>Hello &lt;lib&gt;</h1>"))
        let post = try runWithEnvironment(
            "cgi-fcgi", ["-bind", "-connect", path],
            env: ["REQUEST_METHOD": "POST", "REQUEST_URI": "/echo", "CONTENT_LENGTH": "4"], stdin: "abcd")
        #expect(post.output.contains("\r\n\r\n4 "))
        kill(p.pid, SIGTERM)
        #expect(p.waitForExit() == 0)
        #expect(access(path, F_OK) != 0, "socket removed at exit")
    }
}

@Suite("Out of file descriptors", .serialized)
struct FileDescriptorExhaustionTests {
    @Test func emfileDoesNotSpinAndServingResumes() throws {
        let port = freePort()
        // 40 descriptors: a few for the process, then the listener runs out quickly.
        let server = try SpawnedProcess("/bin/bash", ["-c", "ulimit -n 40; exec \(demoBinary()) serve --http 127.0.0.1:\(port) --loops 1"])
        defer { server.stop() }
        #expect(waitForPort(port))
        var clients: [TestClient] = []
        for _ in 0..<60 {
            // A first byte, so that TCP_DEFER_ACCEPT hands the connection to the server.
            if let c = try? TestClient(.ipv4(host: "127.0.0.1", port: port), timeout: 1) {
                try? c.send("G")
                clients.append(c)
            }
        }
        usleep(300_000)
        let before = cpuTicks(server.pid)
        usleep(1_000_000)
        let used = cpuTicks(server.pid) - before
        #expect(used < 20, "the loop does not spin while out of descriptors (\(used) ticks in 1 s)")
        clients.removeAll()  // free descriptors
        // Serving resumes once the server has seen those closes (allow for a loaded machine).
        var answer: String?
        for _ in 0..<30 where answer == nil {
            usleep(100_000)
            if let c = try? TestClient(.ipv4(host: "127.0.0.1", port: port)) {
                try? c.send("GET /hello?name=again HTTP/1.1\r\nHost: t\r\n\r\n")
                answer = (try? c.readResponse())?.text
            }
        }
        #expect(answer == "<h1>Hello again</h1>")
    }
}
