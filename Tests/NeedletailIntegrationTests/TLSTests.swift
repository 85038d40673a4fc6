import Foundation
import Glibc
import NeedletailLoop
import NeedletailTestSupport
import Testing

@testable import NeedletailServer

/// A self-signed certificate for 127.0.0.1 and localhost, made with the openssl tool.
struct TestCertificate {
    let directory: String
    var cert: String { directory + "/cert.pem" }
    var key: String { directory + "/key.pem" }

    /// `names`: the subjectAltName entries.
    init(names: String = "DNS:localhost,IP:127.0.0.1", commonName: String = "localhost") throws {
        directory = NSTemporaryDirectory() + "needletail-tls-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let r = try run(
            "openssl",
            [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", directory + "/key.pem",
                "-out", directory + "/cert.pem", "-days", "2", "-subj", "/CN=\(commonName)", "-addext", "subjectAltName=\(names)",
            ])
        guard r.status == 0 else { throw TestFailure("openssl req failed: \(r.output)") }
    }

    var identity: TLSCertificate { TLSCertificate(certificateFile: cert, keyFile: key) }

    func remove() { try? FileManager.default.removeItem(atPath: directory) }
}

extension TestCertificate {
    /// `GET /hello` with `openssl s_client` to `address` (`version`: -tls1_2 or -tls1_3;
    /// `session`: its -sess_in/-sess_out flags), checking the answer: "reused" or "new" by
    /// what the handshake was, else the client's whole output.
    func helloSession(_ address: SocketAddress, _ version: String, _ session: String) throws -> String {
        let request = directory + "/request.txt"
        try "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".write(toFile: request, atomically: true, encoding: .utf8)
        let r = try run("sh", ["-c", "timeout 10 openssl s_client -connect \(address) \(version) -ign_eof \(session) < \(request) 2>&1"])
        #expect(r.output.contains("<h1>Hello world</h1>"), "\(r.output)")
        return r.output.contains("Reused, ") ? "reused" : r.output.contains("New, ") ? "new" : r.output
    }

    /// POSTs 300 KB to `/echo` and reads 3 MB from `/big` at 2 MB/s with curl over `base`
    /// (`flags`: the protocol, e.g. `--http2`), checking that both bodies arrive whole.
    func expectBodiesBothWays(base: String, flags: [String] = []) throws {
        let upload = directory + "/upload.bin"
        var bytes = [UInt8](repeating: 0, count: 300_000)
        for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: i &* 7 &+ i >> 9) }
        try Data(bytes).write(to: URL(fileURLWithPath: upload))
        let echoed = directory + "/echoed.bin"
        let post = try run("curl", ["-sS", "--cacert", cert] + flags + ["--data-binary", "@" + upload, "-o", echoed, "\(base)/echo"])
        #expect(post.status == 0, "\(post.output)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: echoed)) == Data(bytes))
        let big = try run(
            "curl", ["-sS", "--cacert", cert] + flags + ["--limit-rate", "2M", "-w", "%{size_download}", "-o", "/dev/null", "\(base)/big?n=3000000"])
        #expect(big.output == "3000000", "\(big.output)")
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// An HTTPS server of the test app (and a plain HTTP listener beside it), stopped after `body`.
/// The test app's router on one HTTPS listener with `tls`, stopped after `body`.
func withHTTPSServer<T>(_ tls: TLSContext, _ body: (SocketAddress) throws -> T) throws -> T {
    var config = ServerConfiguration()
    config.loops = 1
    let server = try Server(responder: TestApp.router(), listeners: [.https(.ipv4(host: "127.0.0.1", port: 0), tls)], configuration: config)
    try server.start()
    defer {
        server.shutdown(grace: 1)
        server.wait()
    }
    return try body(server.addresses[0])
}

func withTLSServer<T>(
    http2: Bool = false, configure: (inout ServerConfiguration) -> Void = { _ in },
    _ body: (TestCertificate, SocketAddress, SocketAddress) throws -> T
) throws -> T {
    let certificate = try TestCertificate()
    defer { certificate.remove() }
    let tls = try TLSContext(certificates: [certificate.identity], http2: http2)
    var config = ServerConfiguration()
    config.loops = 1
    configure(&config)
    let server = try Server(
        responder: TestApp.withAsync(TestApp.withStreaming(TestApp.router())),
        listeners: [.https(.ipv4(host: "127.0.0.1", port: 0), tls), .http(.ipv4(host: "127.0.0.1", port: 0))], configuration: config)
    try server.start()
    defer {
        server.shutdown(grace: 1)
        server.wait()
    }
    return try body(certificate, server.addresses[0], server.addresses[1])
}

@Suite("HTTPS on the native server (OpenSSL on the loop)", .serialized)
struct TLSTests {
    @Test(.enabled(if: toolAvailable("curl") && toolAvailable("openssl")))
    func curlOverTLS12And13() throws {
        try withTLSServer { certificate, address, plain in
            let base = "https://\(address)"
            for (flags, version) in [(["--tlsv1.2", "--tls-max", "1.2"], "TLSv1.2"), (["--tlsv1.3"], "TLSv1.3")] {
                // The certificate is checked against the file: no -k.
                let r = try run("curl", ["-sS", "-v", "--cacert", certificate.cert] + flags + ["\(base)/hello?name=%3Ctls%3E"])
                #expect(r.status == 0, "\(r.output)")
                #expect(r.output.contains("SSL connection using \(version)"), "\(r.output)")
                #expect(r.output.contains("<h1>Hello &lt;tls&gt;</h1>"))
            }
            // ALPN: a client offering h2 and http/1.1 gets HTTP/1.1.
            let h2 = try run("curl", ["-sS", "-v", "--http2", "--cacert", certificate.cert, "\(base)/hello"])
            #expect(h2.output.contains("ALPN: server accepted http/1.1"), "\(h2.output)")
            #expect(h2.output.contains("<h1>Hello world</h1>"))
            // Keep-alive: two requests on one TLS connection.
            let two = try run("curl", ["-sS", "-v", "--cacert", certificate.cert, "\(base)/hello?name=a", "\(base)/hello?name=b"])
            #expect(two.output.contains("Re-using existing connection"), "\(two.output)")
            #expect(two.output.contains("<h1>Hello a</h1>") && two.output.contains("<h1>Hello b</h1>"))
            // The request knows it came over TLS; the plain listener's does not.
            let info = try run("curl", ["-sS", "--cacert", certificate.cert, "\(base)/info"])
            #expect(info.output.contains("secure=true"), "\(info.output)")
            let plainInfo = try run("curl", ["-sS", "http://\(plain)/info"])
            #expect(plainInfo.output.contains("secure=false"), "\(plainInfo.output)")
        }
    }

    @Test(.enabled(if: toolAvailable("curl") && toolAvailable("openssl")))
    func bodiesBothWaysSurviveRecordsAndSlowReaders() throws {
        try withTLSServer { certificate, address, _ in
            let base = "https://\(address)"
            // A body of many records in (the read path) and out (the staged write path), and a
            // reader slower than the server: the socket fills, staged bytes wait for EPOLLOUT.
            try certificate.expectBodiesBothWays(base: base)
            let text = try run("curl", ["-sS", "--cacert", certificate.cert, "\(base)/big?n=100000"])
            #expect(text.output.utf8.count == 100_000)
            #expect(text.output.utf8.enumerated().allSatisfy { $1 == UInt8(97 + $0 % 26) })
            // An immortal chunk (by reference in the chain) and a stream written from another thread.
            let stat = try run("curl", ["-sS", "--cacert", certificate.cert, "\(base)/static"])
            #expect(stat.output.hasSuffix("&lt;end&gt;"))
            #expect(stat.output.utf8.count == 4096 + 11)
            let stream = try run("curl", ["-sS", "--cacert", certificate.cert, "\(base)/stream?n=3"])
            #expect(stream.output == "part 0\npart 1\npart 2\n", "\(stream.output)")
        }
    }

    @Test(.enabled(if: toolAvailable("openssl") && toolAvailable("curl")))
    func oldProtocolsOtherALPNAndPlainHTTPAreRefused() throws {
        try withTLSServer { certificate, address, _ in
            let connect = "\(address)"
            func sClient(_ flags: String) throws -> (status: Int32, output: String) {
                try run("sh", ["-c", "timeout 10 openssl s_client -connect \(connect) \(flags) </dev/null 2>&1"])
            }
            for old in ["-tls1", "-tls1_1"] {
                let r = try sClient(old)
                #expect(r.output.contains("alert protocol version") || r.output.contains("no protocols available"), "\(r.output)")
                #expect(!r.output.contains("BEGIN CERTIFICATE"))
            }
            let h2only = try sClient("-alpn h2")
            #expect(h2only.output.contains("no application protocol"), "\(h2only.output)")
            let ok = try sClient("-alpn http/1.1 -tls1_2")
            #expect(ok.output.contains("ALPN protocol: http/1.1"), "\(ok.output)")
            #expect(ok.output.contains("Protocol  : TLSv1.2") || ok.output.contains("Protocol: TLSv1.2"), "\(ok.output)")
            // Plain HTTP to the TLS port: a 400 that says so (as nginx's 497), then the close.
            let plain = try run("curl", ["-sS", "-i", "-m", "5", "http://\(address)/hello"])
            #expect(plain.output.hasPrefix("HTTP/1.1 400 Bad Request"), "\(plain.output)")
            #expect(plain.output.contains("this port speaks HTTPS"))
            #expect(!plain.output.contains("Hello"))
            let after = try run("curl", ["-sS", "--cacert", certificate.cert, "https://\(address)/hello"])
            #expect(after.output == "<h1>Hello world</h1>")
        }
    }

    @Test(.enabled(if: toolAvailable("openssl")))
    func pipelinedRequestsInSmallRecordsAreAnsweredInOrder() throws {
        try withTLSServer { certificate, address, _ in
            // Forty requests written at once in 512-byte records: OpenSSL reads several records
            // ahead, which epoll does not see. The first suspends (reading pauses with records
            // held inside OpenSSL); all must still be answered, in order.
            var requests = "GET /async/wait?ms=100 HTTP/1.1\r\nHost: x\r\n\r\n"
            for i in 0..<38 { requests += "GET /hello?name=p\(i) HTTP/1.1\r\nHost: x\r\n\r\n" }
            requests += "GET /hello?name=last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            let file = certificate.directory + "/pipelined.txt"
            try requests.write(toFile: file, atomically: true, encoding: .utf8)
            let r = try run(
                "sh",
                [
                    "-c",
                    "timeout 20 openssl s_client -quiet -ign_eof -max_send_frag 512 -CAfile \(certificate.cert) -connect \(address) < \(file) 2>/dev/null",
                ])
            var order: [String] = []
            var rest = Substring(r.output)
            while let open = rest.range(of: "<h1>Hello ") {
                let close = rest[open.upperBound...].range(of: "</h1>")!
                order.append(String(rest[open.upperBound..<close.lowerBound]))
                rest = rest[close.upperBound...]
            }
            #expect(r.output.hasPrefix("HTTP/1.1 200 OK"), "\(r.output.prefix(300))")
            #expect(r.output.contains("waited 100 ms"))
            #expect(order == (0..<38).map { "p\($0)" } + ["last"], "\(order)")
            #expect(r.output.components(separatedBy: "HTTP/1.1 200 OK").count == 41)
        }
    }

    @Test(.enabled(if: toolAvailable("openssl")))
    func aStalledHandshakeIsCutByTheHeaderTimeout() throws {
        try withTLSServer(configure: { $0.http.headerTimeout = 1 }) { _, address, _ in
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { Glibc.close(fd) }
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            guard case .ipv4(_, let port) = address else { throw TestFailure("not IPv4: \(address)") }
            sin.sin_port = port.bigEndian
            sin.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &sin) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            #expect(connected == 0)
            // The start of a ClientHello record, and then nothing. (A client that sends not even
            // that stays in the kernel: the listener's TCP_DEFER_ACCEPT, 10 s, as for HTTP.)
            let partial: [UInt8] = [0x16, 0x03, 0x01, 0x00, 0xc8, 0x01]
            #expect(send(fd, partial, partial.count, 0) == partial.count)
            var tv = timeval(tv_sec: 10, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            let start = monotonicSeconds()
            var byte: UInt8 = 0
            let n = recv(fd, &byte, 1, 0)
            #expect(n == 0, "the server should close a handshake that stalls")
            #expect(monotonicSeconds() - start < 5)
        }
    }

    @Test(.enabled(if: toolAvailable("openssl")))
    func unusableFilesAreNamedWithTheReason() throws {
        let certificate = try TestCertificate()
        defer { certificate.remove() }
        func message(_ cert: String, _ key: String) -> String {
            do {
                _ = try TLSContext(certificateFile: cert, keyFile: key)
                return "no error"
            } catch {
                return error.description
            }
        }
        let missing = certificate.directory + "/missing.pem"
        #expect(message(missing, certificate.key) == "cannot open the certificate file \(missing): No such file or directory")
        let garbage = certificate.directory + "/garbage.pem"
        try "not a certificate\n".write(toFile: garbage, atomically: true, encoding: .utf8)
        #expect(message(garbage, certificate.key).hasPrefix("the certificate file \(garbage) holds no usable PEM certificate chain"))
        #expect(message(certificate.cert, garbage).hasPrefix("the key file \(garbage) holds no usable PEM private key"))
        let other = certificate.directory + "/other.pem"
        let made = try run("openssl", ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", other])
        #expect(made.status == 0)
        #expect(message(certificate.cert, other).hasPrefix("the key in \(other) does not belong to the certificate in \(certificate.cert)"))
        #expect(message(certificate.cert, certificate.key) == "no error")
    }

    @Test(.enabled(if: toolAvailable("curl") && toolAvailable("openssl")))
    func sniChoosesTheCertificateByName() throws {
        let first = try TestCertificate()
        let other = try TestCertificate(names: "DNS:other.test,DNS:*.wild.test", commonName: "other.test")
        defer {
            first.remove()
            other.remove()
        }
        let tls = try TLSContext(certificates: [first.identity, other.identity])
        try withHTTPSServer(tls) { address in
            guard case .ipv4(_, let port) = address else { throw TestFailure("not IPv4") }
            func get(_ host: String, trusting ca: String) throws -> (status: Int32, output: String) {
                try run("curl", ["-sS", "--resolve", "\(host):\(port):127.0.0.1", "--cacert", ca, "https://\(host):\(port)/hello"])
            }
            // A certificate is verified against the one CA file given: which one was sent shows.
            #expect(try get("other.test", trusting: other.cert).output == "<h1>Hello world</h1>")
            #expect(try get("a.wild.test", trusting: other.cert).output == "<h1>Hello world</h1>")
            #expect(try get("other.test", trusting: first.cert).status != 0)
            #expect(try get("localhost", trusting: first.cert).output == "<h1>Hello world</h1>")
            // No SNI for an address, and a name no certificate has: the default one.
            let byAddress = try run("curl", ["-sS", "--cacert", first.cert, "https://127.0.0.1:\(port)/hello"])
            #expect(byAddress.output == "<h1>Hello world</h1>", "\(byAddress.output)")
            let unknown = try run(
                "curl", ["-sS", "-k", "-v", "--resolve", "nobody.test:\(port):127.0.0.1", "https://nobody.test:\(port)/hello"])
            #expect(unknown.output.contains("subject: CN=localhost"), "\(unknown.output)")
        }
    }

    @Test(.enabled(if: toolAvailable("curl") && toolAvailable("openssl") && toolAvailable("wrk")))
    func certificatesAreReloadedOnSIGHUPWithoutAFailedRequest() throws {
        let old = try TestCertificate()
        let new = try TestCertificate()
        let live = try TestCertificate()  // the files the server reads, overwritten below
        defer {
            old.remove()
            new.remove()
            live.remove()
        }
        func install(_ c: TestCertificate) throws {
            for (from, to) in [(c.cert, live.cert), (c.key, live.key)] {
                try? FileManager.default.removeItem(atPath: to + ".tmp")
                try FileManager.default.copyItem(atPath: from, toPath: to + ".tmp")
                #expect(rename(to + ".tmp", to) == 0)
            }
        }
        try install(old)
        let port = freePort()
        let log = live.directory + "/demo.log"
        let server = try SpawnedProcess(
            demoBinary(),
            [
                "serve", "--https", "127.0.0.1:\(port)", "--cert", live.cert, "--key", live.key, "--loops", "1",
                "--data", live.directory + "/data", "--log-file", log,
            ])
        defer { server.stop() }
        let pid = server.pid
        #expect(waitForPort(port))
        func trusted(_ c: TestCertificate) throws -> Bool {
            try run("curl", ["-sS", "--cacert", c.cert, "https://127.0.0.1:\(port)/hello"]).output == "<h1>Hello world</h1>"
        }
        #expect(try trusted(old))
        #expect(try !trusted(new))
        // Load meanwhile: no request fails across the reloads.
        let load = try SpawnedProcess("/usr/bin/wrk", ["-t1", "-c16", "-d3s", "https://127.0.0.1:\(port)/hello"], capture: .stdout)
        usleep(500_000)
        try install(new)
        #expect(kill(pid, SIGHUP) == 0)
        usleep(300_000)
        #expect(try trusted(new))
        #expect(try !trusted(old))
        // A broken file: logged, the certificate in use stays.
        try "garbage\n".write(toFile: live.key, atomically: true, encoding: .utf8)
        #expect(kill(pid, SIGHUP) == 0)
        usleep(300_000)
        #expect(try trusted(new))
        let output = load.readOutput()
        load.waitForExit()
        #expect(output.contains("requests in"), "\(output)")
        #expect(!output.contains("Socket errors") && !output.contains("Non-2xx"), "\(output)")
        let logged = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(logged.contains("reloaded TLS (certificate \(live.cert)"), "\(logged)")
        #expect(logged.contains("certificate reload failed, the certificates in use stay: the key file \(live.key)"), "\(logged)")
    }

    @Test(.enabled(if: toolAvailable("curl") && toolAvailable("openssl")))
    func plainHTTPRedirectsAndHSTSGoesOnlyOverTLS() throws {
        try withTLSServer(configure: {
            $0.strictTransportSecurity = "max-age=600"
            $0.redirectToHTTPS = true
            $0.healthPath = "/healthz"
        }) { certificate, address, plain in
            guard case .ipv4(_, let tlsPort) = address, case .ipv4(_, let plainPort) = plain else { throw TestFailure("not IPv4") }
            let get = try run("curl", ["-sS", "-i", "http://localhost:\(plainPort)/hello?name=x"])
            #expect(get.output.hasPrefix("HTTP/1.1 301 Moved Permanently"), "\(get.output)")
            #expect(get.output.contains("Location: https://localhost:\(tlsPort)/hello?name=x\r\n"), "\(get.output)")
            #expect(!get.output.contains("Strict-Transport-Security"), "never over plain HTTP")
            let post = try run("curl", ["-sS", "-i", "--data-binary", "x", "http://127.0.0.1:\(plainPort)/echo"])
            #expect(post.output.hasPrefix("HTTP/1.1 308 Permanent Redirect"), "\(post.output)")
            #expect(post.output.contains("Location: https://127.0.0.1:\(tlsPort)/echo\r\n"))
            // curl follows it to the HTTPS listener, method and body kept.
            let followed = try run(
                "curl", ["-sS", "-L", "--cacert", certificate.cert, "--data-binary", "kept", "http://localhost:\(plainPort)/echo"])
            #expect(followed.output == "kept", "\(followed.output)")
            let health = try run("curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:\(plainPort)/healthz"])
            #expect(health.output == "200", "the health path is served over plain HTTP")
            let secure = try run("curl", ["-sS", "-i", "--cacert", certificate.cert, "https://127.0.0.1:\(tlsPort)/hello"])
            #expect(secure.output.contains("Strict-Transport-Security: max-age=600\r\n"), "\(secure.output)")
            #expect(secure.output.contains("X-Content-Type-Options: nosniff\r\n"))
        }
    }

    @Test(.enabled(if: toolAvailable("openssl")))
    func sessionsResumeAndTicketKeysRotate() throws {
        let certificate = try TestCertificate()
        defer { certificate.remove() }
        let tls = try TLSContext(certificates: [certificate.identity], ticketKeyLifetime: 2)
        try withHTTPSServer(tls) { (address: SocketAddress) throws in
            func connect(_ version: String, _ session: String) throws -> String {
                try certificate.helloSession(address, version, session)
            }
            let start = monotonicSeconds()
            for version in ["-tls1_2", "-tls1_3"] {
                let saved = certificate.directory + "/session\(version).pem"
                #expect(try connect(version, "-sess_out \(saved)") == "new")
                #expect(try connect(version, "-sess_in \(saved)") == "reused", "\(version): resumed at once")
            }
            // The key those tickets were made with is the one before after 2 s: still accepted
            // (TLS 1.3: a new ticket comes with it); after 4 s it is gone and the handshake is full.
            usleep(UInt32(max(0, 2.5 - (monotonicSeconds() - start)) * 1_000_000))
            #expect(try connect("-tls1_3", "-sess_in \(certificate.directory)/session-tls1_3.pem") == "reused", "after one rotation")
            usleep(UInt32(max(0, 4.6 - (monotonicSeconds() - start)) * 1_000_000))
            let fresh = certificate.directory + "/fresh.pem"
            #expect(
                try connect("-tls1_3", "-sess_in \(certificate.directory)/session-tls1_3.pem -sess_out \(fresh)") == "new",
                "after two rotations")
            // A TLS 1.3 client uses a ticket once: each resumption brings a new one, so a chain of
            // connections, each with the session the one before left, keeps resuming (wrk does
            // this; without the new ticket every other connection was a full handshake).
            var previous = fresh
            for i in 0..<3 {
                let next = certificate.directory + "/chain\(i).pem"
                #expect(try connect("-tls1_3", "-sess_in \(previous) -sess_out \(next)") == "reused", "resumption \(i + 1) in a row")
                previous = next
            }
        }
    }

    /// Two servers with the same ticket-key file (several backends behind one name) resume each
    /// other's sessions; with keys of their own they do not. A key file of the wrong size refuses
    /// the start, naming it.
    @Test(.enabled(if: toolAvailable("openssl")))
    func serversSharingATicketKeyFileResumeEachOthersSessions() throws {
        let certificate = try TestCertificate()
        defer { certificate.remove() }
        let shared = certificate.directory + "/ticket.key", older = certificate.directory + "/older.key"
        for file in [shared, older] {
            #expect(try run("openssl", ["rand", "-out", file, "80"]).status == 0)
        }
        let connect = certificate.helloSession
        func serve(_ files: [String]) throws -> TLSContext {
            try TLSContext(certificates: [certificate.identity], ticketKeyFiles: files)
        }
        let a = try serve([shared]), b = try serve([older, shared]), alone = try TLSContext(certificates: [certificate.identity])
        try withHTTPSServer(a) { (first: SocketAddress) throws in
            try withHTTPSServer(b) { (second: SocketAddress) throws in
                try withHTTPSServer(alone) { (third: SocketAddress) throws in
                    for version in ["-tls1_2", "-tls1_3"] {
                        let saved = certificate.directory + "/session\(version).pem"
                        #expect(try connect(first, version, "-sess_out \(saved)") == "new")
                        // The second server accepts the first's tickets (its second key).
                        #expect(try connect(second, version, "-sess_in \(saved)") == "reused", "\(version) on the second server")
                        #expect(try connect(third, version, "-sess_in \(saved)") == "new", "\(version) on a server with its own keys")
                    }
                }
            }
        }
        let short = certificate.directory + "/short.key"
        try "too short".write(toFile: short, atomically: true, encoding: .utf8)
        do {
            _ = try serve([short])
            Issue.record("a 9-byte ticket key file was accepted")
        } catch {
            #expect("\(error)".contains("the session-ticket key file \(short) holds 9 bytes, not 80"), "\(error)")
        }
    }

    @Test(.enabled(if: toolAvailable("wrk") && toolAvailable("openssl")))
    func manyConnectionsAtOnce() throws {
        try withTLSServer { _, address, _ in
            let r = try run("wrk", ["-t1", "-c32", "-d1s", "https://\(address)/hello?name=wrk"])
            #expect(r.status == 0)
            #expect(!r.output.contains("Non-2xx"), "\(r.output)")
            #expect(!r.output.contains("Socket errors"), "\(r.output)")
            #expect(r.output.contains("requests in"))
        }
    }

    @Test(.enabled(if: toolAvailable("curl") && toolAvailable("openssl")))
    func theDemoServesHTTPSAndItsCookiesAreSecure() throws {
        let certificate = try TestCertificate()
        defer { certificate.remove() }
        let noKey = try run(demoBinary(), ["serve", "--https", "127.0.0.1:0", "--cert", certificate.cert])
        #expect(noKey.status != 0)
        #expect(noKey.output.contains("--https needs --cert FILE and --key FILE"), "\(noKey.output)")
        let missing = try run(
            demoBinary(), ["serve", "--https", "127.0.0.1:0", "--cert", certificate.cert, "--key", "/nonexistent/key.pem"])
        #expect(missing.status != 0)
        #expect(missing.output.contains("cannot open the key file /nonexistent/key.pem"), "\(missing.output)")

        let port = freePort()
        let server = try SpawnedProcess(
            demoBinary(),
            [
                "serve", "--https", "127.0.0.1:\(port)", "--cert", certificate.cert, "--key", certificate.key, "--loops", "1",
                "--data", certificate.directory + "/data",
            ])
        defer { server.stop() }
        var headers = ""
        for _ in 0..<100 {
            let r = try run("curl", ["-sS", "-I", "--cacert", certificate.cert, "https://127.0.0.1:\(port)/board"])
            if r.status == 0 {
                headers = r.output
                break
            }
            usleep(50_000)
        }
        #expect(headers.contains("HTTP/1.1 200"), "\(headers)")
        let cookie = headers.split(separator: "\r\n").first { $0.lowercased().hasPrefix("set-cookie:") }
        #expect(cookie?.hasSuffix("; Secure") == true, "\(headers)")
    }
}

/// A test CA, a certificate it issued (the chain file: leaf, then CA) and OCSP responses about
/// it made by `openssl ocsp` acting as the CA's responder.
struct OCSPFixture {
    let directory: String
    var chain: String { directory + "/chain.pem" }
    var key: String { directory + "/leaf.key" }
    var ca: String { directory + "/ca.pem" }

    init() throws {
        directory = makeTempDir("needletail-ocsp")
        let script = """
            set -e
            cd '\(directory)'
            openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 2 \\
                -subj '/CN=Needletail test CA' -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign,digitalSignature
            openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout leaf.key -out leaf.csr -subj /CN=localhost
            printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > ext.txt
            openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -set_serial 0x1001 -out leaf.pem -days 2 -extfile ext.txt
            cat leaf.pem ca.pem > chain.pem
            openssl ocsp -issuer ca.pem -cert leaf.pem -reqout request.der
            """
        let r = try run("/bin/sh", ["-c", script])
        guard r.status == 0 else { throw TestFailure("making the test CA failed: \(r.output)") }
    }

    /// The CA's answer about the certificate: `good` or `revoked`, in a file of its own.
    func response(_ status: String) throws -> String {
        let index = directory + "/index-\(status).txt"
        let line = status == "revoked" ? "R\t301231235959Z\t261201000000Z\t1001\tunknown\t/CN=localhost\n" : "V\t301231235959Z\t\t1001\tunknown\t/CN=localhost\n"
        try line.write(toFile: index, atomically: true, encoding: .utf8)
        let out = directory + "/response-\(status).der"
        let r = try run(
            "openssl",
            ["ocsp", "-index", index, "-rsigner", ca, "-rkey", directory + "/ca.key", "-CA", ca, "-reqin", directory + "/request.der",
             "-respout", out, "-ndays", "1"])
        guard r.status == 0 else { throw TestFailure("openssl ocsp failed: \(r.output)") }
        return out
    }

    func remove() { try? FileManager.default.removeItem(atPath: directory) }
}

@Suite("OCSP stapling from a file", .serialized)
struct OCSPStaplingTests {
    @Test(.enabled(if: toolAvailable("openssl")))
    func aGoodResponseIsStapledForClientsThatAsk() throws {
        let fixture = try OCSPFixture()
        defer { fixture.remove() }
        let live = fixture.directory + "/live.der"
        try FileManager.default.copyItem(atPath: try fixture.response("good"), toPath: live)
        let tls = try TLSContext(certificates: [TLSCertificate(certificateFile: fixture.chain, keyFile: fixture.key, ocspResponseFile: live)])
        try withHTTPSServer(tls) { address in
            // A reload (SIGHUP) re-reads the file; a revoked answer is refused and the one in use stays.
            try FileManager.default.removeItem(atPath: live)
            try FileManager.default.copyItem(atPath: try fixture.response("revoked"), toPath: live)
            #expect(throws: TLSError.self) { try tls.reload() }
            try FileManager.default.removeItem(atPath: live)
            try FileManager.default.copyItem(atPath: try fixture.response("good"), toPath: live)
            try tls.reload()
            for version in ["-tls1_2", "-tls1_3"] {
                let asked = try run("/bin/sh", ["-c", "timeout 10 openssl s_client -connect \(address) \(version) -CAfile \(fixture.ca) -status < /dev/null 2>&1"])
                #expect(asked.output.contains("OCSP Response Status: successful"), "\(version): \(asked.output)")
                #expect(asked.output.contains("Cert Status: good"), "\(version): \(asked.output)")
                #expect(asked.output.contains("Verify return code: 0 (ok)"), "\(version): \(asked.output)")
            }
            let notAsked = try run("/bin/sh", ["-c", "timeout 10 openssl s_client -connect \(address) -CAfile \(fixture.ca) < /dev/null 2>&1"])
            #expect(!notAsked.output.contains("OCSP Response Status"), "\(notAsked.output)")
        }
        // Without a response file, a client that asks gets none.
        let plain = try TLSContext(certificates: [TLSCertificate(certificateFile: fixture.chain, keyFile: fixture.key)])
        try withHTTPSServer(plain) { address in
            let asked = try run("/bin/sh", ["-c", "timeout 10 openssl s_client -connect \(address) -CAfile \(fixture.ca) -status < /dev/null 2>&1"])
            #expect(asked.output.contains("OCSP response: no response sent"), "\(asked.output)")
        }
    }

    @Test(.enabled(if: toolAvailable("openssl")))
    func unusableResponsesRefuseTheStartNamingTheFile() throws {
        let fixture = try OCSPFixture()
        defer { fixture.remove() }
        func refusal(_ cert: String, _ key: String, _ ocsp: String) -> String {
            do {
                _ = try TLSContext(certificates: [TLSCertificate(certificateFile: cert, keyFile: key, ocspResponseFile: ocsp)])
                return "accepted"
            } catch {
                return error.description
            }
        }
        let revoked = try fixture.response("revoked")
        #expect(refusal(fixture.chain, fixture.key, revoked).contains("the OCSP response in \(revoked) says the certificate in \(fixture.chain) is revoked"))
        // A response about another certificate (a self-signed one here).
        let other = try TestCertificate()
        defer { other.remove() }
        let good = try fixture.response("good")
        #expect(refusal(other.cert, other.key, good).contains("the OCSP response in \(good) is not about the certificate in \(other.cert)"))
        let garbage = fixture.directory + "/garbage.der"
        try "not an OCSP response".write(toFile: garbage, atomically: true, encoding: .utf8)
        #expect(refusal(fixture.chain, fixture.key, garbage).contains("the OCSP response file \(garbage) holds no DER OCSP response"))
        #expect(refusal(fixture.chain, fixture.key, "/nonexistent/ocsp.der").contains("cannot open the OCSP response file /nonexistent/ocsp.der"))
        // The command line: one --ocsp-response per --cert.
        let mismatch = try run(
            demoBinary(),
            ["serve", "--https", "127.0.0.1:0", "--cert", fixture.chain, "--key", fixture.key, "--ocsp-response", good, "--ocsp-response", good])
        #expect(mismatch.status != 0)
        #expect(mismatch.output.contains("--ocsp-response is given for each --cert"), "\(mismatch.output)")
    }
}

@Suite("HTTP/2 on the native HTTPS listener (nghttp2)", .serialized)
struct HTTP2Tests {
    @Test(.enabled(if: toolAvailable("curl") && toolAvailable("openssl")))
    func curlSpeaksHTTP2AndHTTP1StillWorks() throws {
        try withTLSServer(http2: true) { certificate, address, _ in
            let base = "https://\(address)"
            let h2 = try run("curl", ["-sS", "-v", "--http2", "--cacert", certificate.cert, "\(base)/hello?name=%3Ch2%3E"])
            #expect(h2.output.contains("ALPN: server accepted h2"), "\(h2.output)")
            #expect(h2.output.contains("< HTTP/2 200"))
            #expect(h2.output.contains("< content-length: 25"))
            #expect(h2.output.contains("<h1>Hello &lt;h2&gt;</h1>"))
            #expect(h2.output.contains("< x-content-type-options: nosniff"))
            let h1 = try run("curl", ["-sS", "-v", "--http1.1", "--cacert", certificate.cert, "\(base)/hello"])
            #expect(h1.output.contains("ALPN: server accepted http/1.1") && h1.output.contains("<h1>Hello world</h1>"), "\(h1.output)")
            let info = try run("curl", ["-sS", "--http2", "--cacert", certificate.cert, "-H", "Cookie: a=1", "-H", "Cookie: b=2", "\(base)/info?x=1"])
            #expect(info.output.hasPrefix("GET /info /info?x=1 host=\(address) "), "\(info.output)")
            #expect(info.output.contains("secure=true"))
            let head = try run("curl", ["-sS", "-I", "--http2", "--cacert", certificate.cert, "\(base)/hello"])
            #expect(head.output.contains("content-length: 20"), "HEAD keeps the length: \(head.output)")
            let missing = try run("curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--http2", "--cacert", certificate.cert, "\(base)/nope"])
            #expect(missing.output == "404")
        }
    }

    @Test(.enabled(if: toolAvailable("curl") && toolAvailable("openssl")))
    func bodiesBothWaysStreamsAndLimits() throws {
        try withTLSServer(http2: true, configure: { $0.http.maxBodyBytes = 1_000_000 }) { certificate, address, _ in
            let base = "https://\(address)"
            // Flow control both ways: 300 KB up, 3 MB to a reader slower than the server.
            try certificate.expectBodiesBothWays(base: base, flags: ["--http2"])
            let stream = try run("curl", ["-sS", "--http2", "--cacert", certificate.cert, "\(base)/stream?n=3"])
            #expect(stream.output == "part 0\npart 1\npart 2\n", "\(stream.output)")
            let tooBig = try run(
                "sh", ["-c", "head -c 1500000 /dev/zero | curl -sS --http2 --cacert \(certificate.cert) --data-binary @- -o /dev/null -w '%{http_code}' \(base)/echo"])
            #expect(tooBig.output.hasPrefix("413"), "\(tooBig.output)")
            let hugeHeader = String(repeating: "x", count: 40_000)
            let refused = try run("curl", ["-sS", "--http2", "--cacert", certificate.cert, "-H", "X-Big: \(hugeHeader)", "\(base)/hello"])
            #expect(!refused.output.contains("Hello"), "a header list over the limit is refused")
            let after = try run("curl", ["-sS", "--http2", "--cacert", certificate.cert, "\(base)/hello"])
            #expect(after.output == "<h1>Hello world</h1>")
        }
    }

    @Test(.enabled(if: toolAvailable("curl") && toolAvailable("openssl")))
    func asyncAnswersAndTheirErrorsAndGzip() throws {
        try withTLSServer(http2: true) { certificate, address, _ in
            let base = "https://\(address)"
            func get(_ path: String, _ extra: [String] = []) throws -> (code: String, body: String) {
                let r = try run("curl", ["-sS", "-m", "10", "--http2", "--cacert", certificate.cert, "-w", "\n%{http_code}"] + extra + ["\(base)\(path)"])
                let parts = r.output.split(separator: "\n", omittingEmptySubsequences: false)
                return (String(parts.last ?? ""), parts.dropLast().joined(separator: "\n"))
            }
            // An async handler that never suspends is answered at once (not by its deadline).
            let started = ContinuousClock.now
            let now = try get("/async/now?n=7")
            #expect(now.code == "200", "\(now)")
            #expect(ContinuousClock.now - started < .seconds(2))
            #expect(try get("/async/wait?ms=5") == ("200", "waited 5 ms"))
            #expect(try get("/async/threads").body == "sum 500500")
            #expect(try get("/async/fail").code == "500")
            #expect(try get("/async/bad?n=x").code == "400")
            #expect(try get("/async/slow").code == "503")
            #expect(TestApp.offLoop.load(ordering: .relaxed) == 0)
            // Gzip as over HTTP/1.1: a text answer the client accepts, decoded to the same bytes.
            let plain = try get("/big?n=20000")
            let gz = try run("curl", ["-sS", "--http2", "--compressed", "-D", "-", "--cacert", certificate.cert, "\(base)/big?n=20000"])
            #expect(gz.output.contains("content-encoding: gzip") && gz.output.contains("vary: Accept-Encoding"), "\(gz.output.prefix(400))")
            #expect(gz.output.hasSuffix(plain.body), "decodes to the identity bytes")
            let length = try run("curl", ["-sS", "--http2", "-H", "Accept-Encoding: gzip", "-o", "/dev/null", "-w", "%{size_download}", "--cacert", certificate.cert, "\(base)/big?n=20000"])
            #expect((Int(length.output) ?? 20000) < 2000, "compressed: \(length.output)")
            let head = try run("curl", ["-sS", "-I", "--http2", "-H", "Accept-Encoding: gzip", "--cacert", certificate.cert, "\(base)/big?n=20000"])
            #expect(head.output.contains("content-length: \(length.output)"), "HEAD has the gzip length: \(head.output)")
        }
    }

    @Test(.enabled(if: toolAvailable("curl") && toolAvailable("nghttp")))
    func h2cByPriorKnowledgeOnThePlainListener() throws {
        var config = ServerConfiguration()
        config.loops = 1
        config.http2PriorKnowledge = true
        let server = try Server(
            responder: TestApp.withAsync(TestApp.router()), listeners: [.http(.ipv4(host: "127.0.0.1", port: 0))], configuration: config)
        try server.start()
        defer {
            server.shutdown(grace: 1)
            server.wait()
        }
        let base = "http://\(server.addresses[0])"
        let h2 = try run("curl", ["-sS", "-v", "--http2-prior-knowledge", "\(base)/info?x=1"])
        #expect(h2.output.contains("< HTTP/2 200"), "\(h2.output)")
        #expect(h2.output.contains("secure=false"), "a plain connection is not secure: \(h2.output)")
        #expect(try run("curl", ["-sS", "--http2-prior-knowledge", "\(base)/async/wait?ms=3"]).output == "waited 3 ms")
        // HTTP/1.1 on the same listener, and a request line that only starts like the preface.
        let h1 = try run("curl", ["-sS", "-v", "\(base)/hello"])
        #expect(h1.output.contains("< HTTP/1.1 200") && h1.output.contains("<h1>Hello world</h1>"), "\(h1.output)")
        let client = try TestClient(server.addresses[0])
        try client.send("PRI /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        let pri = String(decoding: try client.readToEnd(), as: UTF8.self)
        #expect(pri.hasPrefix("HTTP/1.1 "), "\(pri)")
        let many = try run("nghttp", ["-n", "-s", "-m", "20", "\(base)/hello?name=c"])
        #expect(many.output.split(separator: "\n").filter { $0.contains("/hello?name=c") && $0.contains(" 200 ") }.count == 20, "\(many.output.suffix(400))")
    }

    /// Raw HTTP/2 frames over h2c, for the attacks no well-behaved client makes.
    enum Frames {
        static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
        static func frame(_ type: UInt8, flags: UInt8 = 0, stream: UInt32 = 0, _ payload: [UInt8] = []) -> [UInt8] {
            let n = payload.count
            return [UInt8(n >> 16 & 0xff), UInt8(n >> 8 & 0xff), UInt8(n & 0xff), type, flags]
                + [UInt8(stream >> 24 & 0x7f), UInt8(stream >> 16 & 0xff), UInt8(stream >> 8 & 0xff), UInt8(stream & 0xff)] + payload
        }
        /// HPACK for GET http://a/hello: static :method GET, :scheme http; :path and :authority literal.
        static let getHello: [UInt8] = [0x82, 0x86, 0x04, 0x06] + Array("/hello".utf8) + [0x41, 0x01, 0x61]
        static let endStream: UInt8 = 0x1, endHeaders: UInt8 = 0x4
        /// Sends `bytes` from another thread (the server answers while it reads) and returns the
        /// frames read until the server closes: (type, flags, stream, payload).
        static func exchange(_ address: SocketAddress, _ bytes: [UInt8]) throws -> [(UInt8, UInt8, UInt32, [UInt8])] {
            let client = try TestClient(address, timeout: 10)
            let fd = client.fd
            let sender = Thread {
                var off = 0
                while off < bytes.count {
                    let n = bytes[off...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    if n <= 0 { return }  // the server has closed: the rest is not wanted
                    off += n
                }
            }
            sender.start()
            defer { while !sender.isFinished { usleep(1000) } }
            var frames: [(UInt8, UInt8, UInt32, [UInt8])] = []
            while let head = try client.readExactly(9) {
                let n = Int(head[0]) << 16 | Int(head[1]) << 8 | Int(head[2])
                let stream = UInt32(head[5] & 0x7f) << 24 | UInt32(head[6]) << 16 | UInt32(head[7]) << 8 | UInt32(head[8])
                guard let payload = try client.readExactly(n) else { break }
                frames.append((head[3], head[4], stream, payload))
            }
            return frames
        }
    }

    @Test func rapidResetAndContinuationFloodsAreRefused() throws {
        var config = ServerConfiguration()
        config.loops = 1
        config.http2PriorKnowledge = true
        let server = try Server(responder: TestApp.router(), listeners: [.http(.ipv4(host: "127.0.0.1", port: 0))], configuration: config)
        try server.start()
        defer {
            server.shutdown(grace: 1)
            server.wait()
        }
        let address = server.addresses[0]
        let goaway: UInt8 = 7
        // A well-behaved exchange: one request answered, then a GOAWAY from the client's side.
        var polite = Frames.preface + Frames.frame(4)
        polite += Frames.frame(1, flags: Frames.endHeaders | Frames.endStream, stream: 1, Frames.getHello)
        polite += Frames.frame(goaway, [0, 0, 0, 0, 0, 0, 0, 0])
        let answered = try Frames.exchange(address, polite)
        #expect(answered.contains { $0.0 == 0 && $0.2 == 1 && String(decoding: $0.3, as: UTF8.self).contains("Hello world") }, "\(answered.map(\.0))")

        // Rapid reset (CVE-2023-44487): 3,000 streams opened and cancelled at once. Past the
        // burst of 1,000 the server ends the connection with GOAWAY, having answered no more.
        var attack = Frames.preface + Frames.frame(4)
        for i in 0..<3000 {
            let id = UInt32(2 * i + 1)
            attack += Frames.frame(1, flags: Frames.endHeaders | Frames.endStream, stream: id, Frames.getHello)
            attack += Frames.frame(3, stream: id, [0, 0, 0, 8])  // RST_STREAM CANCEL
        }
        let reset = try Frames.exchange(address, attack)
        let away = reset.last { $0.0 == goaway }
        #expect(away != nil, "GOAWAY after the reset burst")
        if let away { #expect(away.3[4..<8] != [0, 0, 0, 0], "with an error code: \(away.3)") }
        let answeredStreams = Set(reset.filter { $0.0 == 1 }.map(\.2))
        #expect(answeredStreams.count <= 1100, "\(answeredStreams.count) answered")

        // CONTINUATION flood (CVE-2024-28182): a header block that never ends.
        var flood = Frames.preface + Frames.frame(4) + Frames.frame(1, stream: 1, Frames.getHello)
        let field: [UInt8] = [0x00, 0x03] + Array("x-a".utf8) + [0x01, 0x62]
        for _ in 0..<2000 { flood += Frames.frame(9, stream: 1, field) }
        let flooded = try Frames.exchange(address, flood)
        let calm = flooded.last { $0.0 == goaway }
        #expect(calm.map { Array($0.3[4..<8]) } == [0, 0, 0, 0x0b], "GOAWAY ENHANCE_YOUR_CALM for the flood: \(flooded.map(\.0))")

        // The server serves on.
        let after = try Frames.exchange(address, polite)
        #expect(after.contains { $0.0 == 0 && String(decoding: $0.3, as: UTF8.self).contains("Hello world") })
    }

    @Test(.enabled(if: toolAvailable("nghttp") && toolAvailable("openssl")))
    func streamsAreMultiplexedAndASuspendedOneBlocksNoOther() throws {
        try withTLSServer(http2: true) { certificate, address, _ in
            let base = "https://\(address)"
            // 60 requests on one connection, up to 60 at once.
            let many = try run("nghttp", ["-n", "-s", "-m", "60", "\(base)/hello?name=m"])
            let lines = many.output.split(separator: "\n").filter { $0.contains("/hello?name=m") }
            #expect(lines.count == 60, "\(many.output.suffix(500))")
            #expect(lines.allSatisfy { $0.contains(" 200 ") })
            // A request that waits 500 ms and one that does not, on one connection: the second is
            // answered first (the loop and the connection serve on while the first is suspended).
            let mixed = try run("nghttp", ["-n", "-s", "\(base)/async/wait?ms=500", "\(base)/hello?name=fast"])
            let rows = mixed.output.split(separator: "\n").filter { $0.contains(" 200 ") }
            #expect(rows.count == 2, "\(mixed.output)")
            func finished(_ path: String) -> Double? {
                guard let row = rows.first(where: { $0.contains(path) }) else { return nil }
                // "id  responseEnd requestStart  process code size request path": responseEnd is
                // +N.NNms, or +NNNus under a millisecond, or +N.NNs; in milliseconds here.
                let fields = row.split(separator: " ").filter { !$0.isEmpty }
                guard fields.count > 1 else { return nil }
                let t = fields[1].drop { $0 == "+" }
                for (unit, scale) in [("us", 0.001), ("ms", 1.0), ("s", 1000.0)] where t.hasSuffix(unit) {
                    return Double(t.dropLast(unit.count)).map { $0 * scale }
                }
                return nil
            }
            let slow = finished("/async/wait"), fast = finished("/hello?name=fast")
            #expect(slow != nil && fast != nil && fast! < slow!, "\(mixed.output)")
            #expect((slow ?? 0) >= 500)
        }
    }

    @Test(.enabled(if: toolAvailable("nghttp") && toolAvailable("openssl")))
    func aGracefulStopAnswersTheStreamInFlight() throws {
        let certificate = try TestCertificate()
        defer { certificate.remove() }
        let tls = try TLSContext(certificates: [certificate.identity], http2: true)
        var config = ServerConfiguration()
        config.loops = 1
        let server = try Server(
            responder: TestApp.withAsync(TestApp.router()), listeners: [.https(.ipv4(host: "127.0.0.1", port: 0), tls)], configuration: config)
        try server.start()
        let address = server.addresses[0]
        let client = try SpawnedProcess("/usr/bin/nghttp", ["-n", "-s", "https://\(address)/async/wait?ms=400"], capture: .stdout)
        usleep(150_000)
        server.shutdown(grace: 5)
        let output = client.readOutput()
        client.waitForExit()
        server.wait()
        #expect(output.contains(" 200 "), "the stream in flight is answered: \(output)")
    }
}
