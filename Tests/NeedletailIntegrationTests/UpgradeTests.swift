import NeedletailTestSupport
import Foundation
import Glibc
import NeedletailLoop
import Testing

/// Live upgrades (SIGUSR2) of the demo binary, counted from the client side: wrk's socket
/// errors (refused, reset, timed out) and non-2xx answers, every acknowledged post on the
/// board afterwards, parked polls answered across the switch, sessions kept, a failing new
/// binary leaving the old process serving, and nginx in front logging no 502.
@Suite(.serialized) struct UpgradeTests {
    /// A demo server that may change process: `pid` follows the upgrades through its log.
    final class Upgradable {
        let dir: String
        let port: UInt16
        let logPath: String
        private(set) var pid: pid_t
        private var first: SpawnedProcess?

        init(executable: String = demoBinary(), extra: [String] = [], port: UInt16 = freePort()) throws {
            dir = makeTempDir("needletail-upgrade")
            self.port = port
            logPath = dir + "/log"
            let p = try SpawnedProcess(
                executable,
                ["serve", "--http", "127.0.0.1:\(port)", "--data", dir + "/data", "--loops", "2", "--log-file", logPath] + extra)
            first = p
            pid = p.pid
            guard waitForPort(port) else { throw TestClient.Failure(description: "the demo did not start: \(log)") }
        }

        var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

        /// Sends SIGUSR2 and waits until the new process serves; returns its pid (nil: the
        /// old process logged a failed upgrade or nothing happened in `seconds`).
        func upgrade(seconds: Double = 30) -> pid_t? {
            let before = log.utf8.count
            kill(pid, SIGUSR2)
            return successor(since: before, seconds: seconds)
        }

        /// Waits until the log, past its first `offset` bytes, says a new process took over
        /// from `pid`; then follows it.
        func successor(since offset: Int, seconds: Double = 30) -> pid_t? {
            guard let new = Self.successor(of: pid, logPath: logPath, since: offset, seconds: seconds) else { return nil }
            pid = new
            return new
        }

        /// The pid that the log at `logPath` (past `offset` bytes) says took over from `old`;
        /// nil if `old` logged a failed upgrade or nothing came within `seconds`.
        static func successor(of old: pid_t, logPath: String, since offset: Int = 0, seconds: Double = 30) -> pid_t? {
            let end = monotonicSeconds() + seconds
            while monotonicSeconds() < end {
                let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
                let tail = String(log.utf8.dropFirst(offset)) ?? ""
                for line in tail.split(separator: "\n") where line.contains("[\(old)]: pid ") && line.contains(" serves; this process stops") {
                    if let r = line.range(of: "[\(old)]: pid "), let new = Int32(line[r.upperBound...].prefix { $0.isNumber }) {
                        return new
                    }
                }
                if tail.contains("[\(old)]: upgrade failed") { return nil }
                usleep(20_000)
            }
            return nil
        }

        /// Waits for the old process `old` to be gone (it exits once the new one serves).
        func waitGone(_ old: pid_t, seconds: Double = 15) -> Bool {
            let end = monotonicSeconds() + seconds
            while monotonicSeconds() < end {
                if kill(old, 0) != 0 { return true }
                var status: Int32 = 0
                _ = waitpid(old, &status, WNOHANG)  // the first one is this test's child
                usleep(20_000)
            }
            return false
        }

        func stop() {
            kill(pid, SIGTERM)
            _ = waitGone(pid)
            first?.stop()
        }

        deinit { stop() }
    }

    /// A visitor of the board with its own cookie.
    struct Visitor {
        let port: UInt16
        var cookie = ""

        mutating func get(_ path: String) throws -> TestClient.Response {
            let c = try TestClient(.ipv4(host: "127.0.0.1", port: port), timeout: 10)
            try c.send("GET \(path) HTTP/1.1\r\nHost: t\r\n\(cookie.isEmpty ? "" : "Cookie: \(cookie)\r\n")Connection: close\r\n\r\n")
            let r = try c.readResponse()
            if let set = r.header("set-cookie") { cookie = String(set.split(separator: ";")[0]) }
            return r
        }

        /// Posts `text` from a fresh board page; the status (303: acknowledged, durable).
        mutating func post(_ text: String, forum: String = "Debian") throws -> Int {
            let page = try get("/board?forum=\(forum)").text
            guard let r = page.range(of: "action=\"/_nt/a/") else { throw TestClient.Failure(description: "no action form") }
            let action = "/_nt/a/" + page[r.upperBound...].prefix { $0 != "\"" }
            let body = "text=" + text.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
            let c = try TestClient(.ipv4(host: "127.0.0.1", port: port), timeout: 10)
            try c.send(
                "POST \(action) HTTP/1.1\r\nHost: t\r\nCookie: \(cookie)\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
            )
            return try c.readResponse().status
        }

        static func name(in page: String) -> String? {
            guard let r = page.range(of: "You post as <strong>") else { return nil }
            return String(page[r.upperBound...].prefix { $0 != "<" })
        }

        static func view(in page: String) -> String? {
            guard let r = page.range(of: "data-nt-view=\"") else { return nil }
            return String(page[r.upperBound...].prefix { $0 != "\"" })
        }
    }

    /// Posts in a loop on a thread of its own until stopped; keeps what was acknowledged and
    /// counts what failed. A 410 (the form's page came from the old process, whose views the
    /// new one does not have) is what makes the runtime reload: the post is made again from a
    /// fresh page, as after that reload, and counted apart.
    final class Poster: @unchecked Sendable {
        private let lock = NSLock()
        private var stopped = false
        private(set) var acknowledged: [String] = []
        private(set) var failures: [String] = []
        private(set) var stale = 0
        private let done = DispatchSemaphore(value: 0)

        init(port: UInt16) {
            Thread.detachNewThread { [self] in
                var visitor = Visitor(port: port)
                var i = 0
                while !lock.withLock({ stopped }) {
                    let text = "during upgrades \(i) \(Int.random(in: 0..<1_000_000))"
                    do {
                        var status = try visitor.post(text)
                        if status == 410 {
                            lock.withLock { stale += 1 }
                            status = try visitor.post(text)
                        }
                        lock.withLock { if status == 303 { acknowledged.append(text) } else { failures.append("status \(status)") } }
                    } catch {
                        lock.withLock { failures.append("\(error)") }
                    }
                    i += 1
                    usleep(5_000)
                }
                done.signal()
            }
        }

        func stop() -> (acknowledged: [String], failures: [String], stale: Int) {
            lock.withLock { stopped = true }
            done.wait()
            return lock.withLock { (acknowledged, failures, stale) }
        }
    }

    /// wrk's summary: requests, socket errors and non-2xx/3xx answers (zero when it prints none).
    static func wrkCounts(_ output: String) -> (requests: Int, socketErrors: String?, non2xx: Int) {
        let requests = output.split(separator: "\n").first { $0.contains("requests in") }.flatMap { Int($0.split(separator: " ")[0]) } ?? 0
        let errors = output.split(separator: "\n").first { $0.contains("Socket errors") }.map(String.init)
        let non2xx = output.split(separator: "\n").first { $0.contains("Non-2xx") }.flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0
        return (requests, errors, non2xx)
    }

    /// Starts wrk on `url` for `seconds`; the handle's `output()` waits for its summary.
    static func wrk(_ url: String, seconds: Int, connections: Int = 100) throws -> () -> String {
        let p = try SpawnedProcess("/usr/bin/wrk", ["-t1", "-c\(connections)", "-d\(seconds)s", url], capture: .both)
        return {
            let output = p.readOutput()
            p.waitForExit()
            return output
        }
    }

    /// Ten upgrades in a row under `wrk -c100` and a posting client: no refused, reset or
    /// failed request, and every acknowledged post on the board afterwards.
    @Test(.enabled(if: toolAvailable("wrk"))) func tenUpgradesUnderLoadLoseNothing() throws {
        let server = try Upgradable()
        defer { server.stop() }
        let poster = Poster(port: server.port)
        let output = try Self.wrk("http://127.0.0.1:\(server.port)/hello", seconds: 14)
        usleep(500_000)
        var pids = [server.pid]
        for _ in 0..<10 {
            let old = server.pid
            guard let new = server.upgrade() else {
                Issue.record("an upgrade did not complete:\n\(server.log)")
                break
            }
            pids.append(new)
            #expect(server.waitGone(old), "the old process \(old) exits")
            usleep(300_000)
        }
        let wrkOutput = output()
        let (acknowledged, failures, stale) = poster.stop()
        let counts = Self.wrkCounts(wrkOutput)
        print(
            "upgrades: \(pids.count - 1) under load, wrk \(counts.requests) requests, \(acknowledged.count) posts acknowledged, \(stale) made again after a 410"
        )
        #expect(pids.count == 11 && Set(pids).count == 11, "ten new processes took over: \(pids)")
        #expect(counts.requests > 1000, "\(wrkOutput)")
        #expect(counts.socketErrors == nil, "no refused, reset or timed-out connection: \(wrkOutput)")
        #expect(counts.non2xx == 0, "every answer a 200: \(wrkOutput)")
        #expect(failures.isEmpty, "every post acknowledged: \(failures.prefix(5))")
        #expect(acknowledged.count > 20)
        var reader = Visitor(port: server.port)
        let board = try reader.get("/board?forum=Debian").text
        let missing = acknowledged.filter { !board.contains($0) }
        #expect(missing.isEmpty, "acknowledged posts missing after the upgrades: \(missing.prefix(5))")
    }

    /// Parked long-polls are answered by the old process when it hands over, and an event
    /// stream gets `nt-reconnect`; each page, doing what the runtime does (poll again: 410 from
    /// the new process, which has none of the old views; reload), then shows the post made
    /// during the switch, with the same session and user name.
    @Test func parkedPollsAndSessionsCrossAnUpgrade() throws {
        let server = try Upgradable()
        defer { server.stop() }
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        let count = min(1000, Int(limit.rlim_cur) / 2 - 100)
        var visitor = Visitor(port: server.port)
        let page = try visitor.get("/board?forum=Gentoo").text
        guard let name = Visitor.name(in: page), let view = Visitor.view(in: page) else {
            Issue.record("no user name or view on the board: \(page.prefix(300))")
            return
        }
        var polls: [TestClient] = []
        for _ in 0..<count {
            let poll = try TestClient(.ipv4(host: "127.0.0.1", port: server.port), timeout: 20)
            try poll.send("GET /_nt/poll?v=\(view)&c=forum:Gentoo%7C0 HTTP/1.1\r\nHost: t\r\nCookie: \(visitor.cookie)\r\n\r\n")
            polls.append(poll)
        }
        let events = try TestClient(.ipv4(host: "127.0.0.1", port: server.port), timeout: 20)
        try events.send("GET /_nt/events?v=\(view)&c=forum:Gentoo%7C0 HTTP/1.1\r\nHost: t\r\nCookie: \(visitor.cookie)\r\n\r\n")
        usleep(300_000)
        let old = server.pid
        let offset = server.log.utf8.count
        kill(old, SIGUSR2)
        // A post while the processes change, from another visitor (whichever process serves it).
        var other = Visitor(port: server.port)
        let text = "during the switch \(Int.random(in: 0..<1_000_000))"
        var status = try other.post(text, forum: "Gentoo")
        if status == 410 { status = try other.post(text, forum: "Gentoo") }
        #expect(status == 303)
        guard server.successor(since: offset) != nil else {
            Issue.record("the upgrade did not complete:\n\(server.log)")
            return
        }
        var answered = 0
        for poll in polls {
            if let r = try? poll.readResponse(), r.status == 200 { answered += 1 }
        }
        #expect(answered == count, "every parked poll is answered across the upgrade (\(answered) of \(count))")
        let stream = String(decoding: (try? events.readToEnd()) ?? [], as: UTF8.self)
        #expect(stream.contains("event: nt-reconnect"), "the event stream is told to reconnect: \(stream.suffix(200))")
        #expect(server.waitGone(old))
        // Each page polls again: the new process does not know the old view, so it reloads.
        var reloadedWithPost = 0
        for _ in 0..<count {
            let again = try visitor.get("/_nt/poll?v=\(view)&c=forum:Gentoo%7C0")
            guard again.status == 410 else { continue }
            if try visitor.get("/board?forum=Gentoo").text.contains(text) { reloadedWithPost += 1 }
        }
        #expect(reloadedWithPost == count, "every page learns that its view is gone and shows the post after its reload")
        let reloaded = try visitor.get("/board?forum=Gentoo").text
        #expect(Visitor.name(in: reloaded) == name, "the same user name after the upgrade")
        #expect(server.log.contains("took over 1 sessions") || server.log.contains("took over 2 sessions"), "\(server.log)")
    }

    /// A new binary that fails (exits at start, or cannot open its store) leaves the old process
    /// serving, with the records it had, and the log says why; a good one then takes over.
    @Test func aFailingNewBinaryLeavesTheOldServing() throws {
        let bin = makeTempDir("needletail-upgrade-bin")
        let path = bin + "/needletail-demo"
        #expect(try run("cp", [demoBinary(), bin + "/real"]).status == 0)
        #expect(symlink(bin + "/real", path) == 0)
        let server = try Upgradable(executable: path)
        defer { server.stop() }
        let old = server.pid
        var visitor = Visitor(port: server.port)
        #expect(try visitor.post("before the failed upgrades") == 303)

        func install(_ script: String) throws {
            unlink(path)
            try script.write(toFile: path, atomically: true, encoding: .utf8)
            chmod(path, 0o755)
        }
        // 1. A build that exits at once.
        try install("#!/bin/sh\necho 'broken build' >&2\nexit 3\n")
        #expect(server.upgrade(seconds: 10) == nil)
        #expect(server.log.contains("[\(old)]: upgrade failed: the new process"), "\(server.log)")
        #expect(server.log.contains("exited with status 3"), "\(server.log)")
        #expect(try visitor.get("/hello?name=still").text == "<h1>Hello still</h1>")

        // 2. A build that starts but cannot open its store (its --data is a file).
        let notAFolder = bin + "/not-a-folder"
        try "x".write(toFile: notAFolder, atomically: true, encoding: .utf8)
        try install("#!/bin/sh\nexec \(bin)/real \"$@\" --data \(notAFolder)\n")
        #expect(server.upgrade(seconds: 30) == nil)
        #expect(server.log.contains("gave up"), "\(server.log)")
        #expect(server.pid == old && kill(old, 0) == 0, "the old process serves on")
        #expect(try visitor.get("/hello?name=again").text == "<h1>Hello again</h1>")
        #expect(try visitor.post("after the failed upgrades") == 303, "with its store taken back")

        // 3. A good build takes over, with both posts.
        unlink(path)
        #expect(symlink(bin + "/real", path) == 0)
        #expect(server.upgrade() != nil, "\(server.log)")
        let board = try visitor.get("/board?forum=Debian").text
        #expect(board.contains("before the failed upgrades") && board.contains("after the failed upgrades"))
    }

    /// The web servers in front, and how the demo listens for them.
    enum Front: String, CaseIterable, Sendable { case nginxUnix, nginxTCP, lighttpdUnix }

    /// Behind nginx (FastCGI over a unix socket and over TCP, connections kept) and lighttpd:
    /// upgrades under load make no failed request and no upstream error in the web server's log.
    @Test(
        .enabled(if: toolAvailable("wrk") && FileManager.default.fileExists(atPath: "/usr/sbin/nginx")
            && FileManager.default.fileExists(atPath: "/usr/sbin/lighttpd")),
        arguments: Front.allCases)
    func behindAWebServerTheUpgradeIsInvisible(_ front: Front) throws {
        let dir = makeTempDir("needletail-upgrade-fcgi")
        let sock = dir + "/app.sock"
        let appPort = freePort()
        let port = freePort()
        let listen = front == .nginxTCP ? "127.0.0.1:\(appPort)" : "unix:" + sock
        let demo = try SpawnedProcess(
            demoBinary(), ["serve", "--fastcgi", listen, "--data", dir + "/data", "--loops", "2", "--log-file", dir + "/log"])
        var pid = demo.pid
        defer {
            kill(pid, SIGTERM)
            demo.stop()
        }
        if front == .nginxTCP {
            #expect(waitForPort(appPort))
        } else {
            let end = monotonicSeconds() + 10
            while access(sock, F_OK) != 0 && monotonicSeconds() < end { usleep(20_000) }
        }
        let server: WebServerProcess
        switch front {
        case .nginxUnix: server = try WebServerProcess.nginxInFront(of: sock, port: port)
        case .nginxTCP:
            server = try WebServerProcess.nginx(
                serverBlocks: try shippedConfig(
                    "nginx/needletail-tcp.conf",
                    replacing: [("listen 80;", "listen 127.0.0.1:\(port);"), ("listen [::]:80;", ""), ("127.0.0.1:9000", "127.0.0.1:\(appPort)")]),
                port: port)
        case .lighttpdUnix:
            server = try WebServerProcess.lighttpd(
                include: try shippedConfig("lighttpd/needletail-socket.conf", replacing: [("/run/needletail/app.sock", sock)]), port: port)
        }
        defer { server.stop() }
        let output = try Self.wrk("http://127.0.0.1:\(port)/hello", seconds: 8, connections: 50)
        usleep(500_000)
        func log() -> String { (try? String(contentsOfFile: dir + "/log", encoding: .utf8)) ?? "" }
        for _ in 0..<3 {
            let old = pid
            kill(old, SIGUSR2)
            guard let n = Upgradable.successor(of: old, logPath: dir + "/log", seconds: 20) else {
                Issue.record("the upgrade did not complete: \(log())")
                break
            }
            pid = n
            usleep(800_000)
        }
        let wrkOutput = output()
        let counts = Self.wrkCounts(wrkOutput)
        print("upgrades behind \(front): wrk \(counts.requests) requests")
        #expect(counts.requests > 1000, "\(wrkOutput)")
        #expect(counts.socketErrors == nil && counts.non2xx == 0, "no failed request through \(front): \(wrkOutput)")
        let errors = server.errorLog.split(separator: "\n").filter { $0.contains("upstream") || $0.contains("fastcgi") || $0.contains("backend") }
        #expect(errors.isEmpty, "no upstream error in the web server's log: \(errors.prefix(5))")
        if front != .nginxTCP { #expect(access(sock, F_OK) == 0, "the socket's path stays for the new process") }
    }

    /// systemd's socket activation (`systemd-socket-activate`, the protocol of a .socket
    /// unit): the demo serves the socket it is given, named http, with no --http flag, and
    /// upgrades with it; `NOTIFY_SOCKET` hears READY=1, RELOADING=1 and the new MAINPID.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-socket-activate")))
    func socketActivationAndNotifications() throws {
        let dir = makeTempDir("needletail-activate")
        let port = freePort()
        // A datagram socket standing in for systemd's notification socket.
        let notify = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(notify) }
        let notifyPath = dir + "/notify"
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in for (i, b) in notifyPath.utf8.enumerated() { raw[i] = b } }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(notify, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(bound == 0)
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(notify, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        func notifications() -> [String] {
            var all: [String] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = buffer.withUnsafeMutableBytes { recv(notify, $0.baseAddress, $0.count, 0) }
                if n <= 0 { return all }
                all.append(String(decoding: buffer[0..<n], as: UTF8.self))
            }
        }
        let logPath = dir + "/log"
        let first = try SpawnedProcess(
            "/usr/bin/systemd-socket-activate",
            ["-l", "127.0.0.1:\(port)", "--fdname=http", "-E", "NOTIFY_SOCKET=" + notifyPath, demoBinary(), "serve", "--data", dir + "/data", "--loops", "2", "--log-file", logPath])
        var pid = first.pid
        defer {
            kill(pid, SIGTERM)
            first.stop()
        }
        // systemd-socket-activate binds, then execs the demo with the socket (it queues meanwhile).
        #expect(waitForPort(port))
        var visitor = Visitor(port: port)
        let hello = try visitor.get("/hello?name=activated")
        #expect(hello.text == "<h1>Hello activated</h1>", "the inherited socket is served without --http")
        var heard = notifications()
        #expect(heard.contains { $0.hasPrefix("READY=1") }, "READY=1 once serving: \(heard)")
        let log = { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
        #expect(!log().contains("8080"), "nothing else is bound")
        kill(pid, SIGUSR2)
        let next = Upgradable.successor(of: pid, logPath: logPath)
        #expect(next != nil, "the upgrade completes with the activated socket: \(log())")
        if let next { pid = next }
        usleep(200_000)
        heard = notifications()
        #expect(heard.contains { $0.hasPrefix("RELOADING=1") }, "RELOADING=1: \(heard)")
        #expect(heard.contains { $0 == "MAINPID=\(pid)" }, "the new MAINPID: \(heard)")
        #expect(try visitor.get("/hello?name=again").text == "<h1>Hello again</h1>")
    }

    /// SIGHUP re-reads `--settings` in the same process: a kept-alive connection gets the new
    /// fields from its next answer; a bad file is refused with its line and changes nothing;
    /// a bad file at start stops the server before it listens.
    @Test func sighupReReadsSettingsWithoutANewProcess() throws {
        let path = makeTempDir("needletail-settings") + "/settings"
        func settings(_ text: String) throws { try text.write(toFile: path, atomically: true, encoding: .utf8) }
        try settings("# the release\nheader X-Release: one\n")
        let server = try Upgradable(extra: ["--settings", path, "--header", "X-Flag: flag"])
        let pid = server.pid
        let kept = try TestClient(.ipv4(host: "127.0.0.1", port: server.port), timeout: 10)
        func hello() throws -> TestClient.Response {
            try kept.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
            return try kept.readResponse()
        }
        var first = try hello()
        #expect(first.header("x-release") == "one")
        #expect(first.header("x-flag") == nil, "the file's header lines replace the flags'")
        /// Sends SIGHUP and waits for the log line that says how it went.
        func hangUp(expecting: String) -> Bool {
            let before = server.log.utf8.count
            kill(pid, SIGHUP)
            let end = monotonicSeconds() + 10
            while monotonicSeconds() < end {
                if (String(server.log.utf8.dropFirst(before)) ?? "").contains(expecting) { return true }
                usleep(10_000)
            }
            return false
        }

        try settings("log-level debug\nheader X-Release: two\n")
        #expect(hangUp(expecting: "reloaded: \(path): log level debug, fields X-Content-Type-Options: nosniff, X-Release: two"), "\(server.log)")
        first = try hello()
        #expect(first.header("x-release") == "two")
        #expect(first.header("x-content-type-options") == "nosniff")

        try settings("header X-Release: three\nlog-level loud\n")
        #expect(hangUp(expecting: "reload failed, the current settings stay: \(path):2: unknown log level \"loud\""), "\(server.log)")
        #expect(try hello().header("x-release") == "two")

        try settings("")
        #expect(hangUp(expecting: "reloaded: "))
        let flags = try hello()
        #expect(flags.header("x-flag") == "flag", "with no header lines in the file, the flags' come back")
        #expect(flags.header("x-release") == nil)
        #expect(server.pid == pid && kill(pid, 0) == 0, "the same process serves")

        try settings("header Bad Name: x\n")
        let refused = try run(demoBinary(), ["serve", "--http", "127.0.0.1:\(freePort())", "--settings", path, "--log-file", "stderr"])
        #expect(refused.status == 1)
        #expect(refused.output.contains("\(path):1: a header is"), "\(refused.output)")
    }
}
