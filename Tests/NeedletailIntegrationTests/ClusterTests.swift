import Foundation
import Glibc
import NeedletailLoop
import NeedletailTestSupport
import Synchronization
import Testing

/// Hosts made with network namespaces: a bridge in a namespace of its own, each host a
/// namespace with one veth on it and its own address in 10.77.0.0/24, and this (the root)
/// namespace on it as 10.77.0.1 (where nginx and the browsers run). Removed by `remove()`.
final class Network {
    /// Names of its own per network (a namespace's devices go away some time after it does).
    let tag: String
    static let made = Atomic<Int>(0)
    private(set) var namespaces: [String] = []

    static var available: Bool { geteuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") }

    private func ip(_ args: [String]) throws {
        let r = try run("/usr/sbin/ip", args)
        guard r.status == 0 else { throw TestClient.Failure(description: "ip \(args.joined(separator: " ")): \(r.output)") }
    }

    init() throws {
        tag = "nt\(getpid() % 1000)n\(Self.made.add(1, ordering: .relaxed).newValue)"
        let lan = tag + "-lan"
        try ip(["netns", "add", lan])
        namespaces.append(lan)
        try ip(["-n", lan, "link", "add", "br0", "type", "bridge"])
        try ip(["-n", lan, "link", "set", "br0", "up"])
        // This namespace's leg.
        try ip(["link", "add", tag + "r", "type", "veth", "peer", "name", tag + "rl"])
        try ip(["link", "set", tag + "rl", "netns", lan])
        try ip(["-n", lan, "link", "set", tag + "rl", "master", "br0", "up"])
        try ip(["addr", "add", "10.77.0.1/24", "dev", tag + "r"])
        try ip(["link", "set", tag + "r", "up"])
    }

    /// A host `name` at 10.77.0.`n`; returns its namespace.
    func host(_ name: String, _ n: Int) throws -> String {
        let ns = "\(tag)-\(name)", lan = tag + "-lan"
        try ip(["netns", "add", ns])
        namespaces.append(ns)
        try ip(["link", "add", "\(tag)\(name)h", "type", "veth", "peer", "name", "\(tag)\(name)l"])
        try ip(["link", "set", "\(tag)\(name)h", "netns", ns])
        try ip(["link", "set", "\(tag)\(name)l", "netns", lan])
        try ip(["-n", lan, "link", "set", "\(tag)\(name)l", "master", "br0", "up"])
        try ip(["-n", ns, "addr", "add", "10.77.0.\(n)/24", "dev", "\(tag)\(name)h"])
        try ip(["-n", ns, "link", "set", "\(tag)\(name)h", "up"])
        try ip(["-n", ns, "link", "set", "lo", "up"])
        return ns
    }

    func remove() {
        _ = try? run("/usr/sbin/ip", ["link", "del", tag + "r"])
        for ns in namespaces.reversed() { _ = try? run("/usr/sbin/ip", ["netns", "del", ns]) }
        namespaces = []
    }

    deinit { remove() }
}

/// Three backends, PostgreSQL and nginx on hosts of their own: what README "More than one
/// machine" deploys, with real browsers.
@Suite(.serialized) struct ClusterTests {
    static let addresses = ["10.77.0.11", "10.77.0.12", "10.77.0.13"]

    /// The cluster, running: `body` gets nginx's base URL, the backends (by address), the
    /// database, and a way to start a backend again.
    func withCluster(_ body: (String, inout [String: SpawnedProcess], PostgresServer) throws -> Void) throws {
        let network = try Network()
        defer { network.remove() }
        let db = try network.host("db", 5)
        let postgres = try PostgresServer(host: "10.77.0.5", port: 5432, namespace: db, clients: "10.77.0.0/24")
        defer { postgres.stop() }
        var backends: [String: SpawnedProcess] = [:]
        let logs = makeTempDir("nt-cluster")
        defer { for b in backends.values { b.stop() } }
        for (i, address) in Self.addresses.enumerated() {
            let ns = try network.host("b\(i + 1)", 11 + i)
            // Each says who it is (for the test to know where a browser landed); only nginx's
            // host may speak FastCGI to it.
            let command = ["/usr/sbin/ip", "netns", "exec", ns, demoBinary(), "--fastcgi", "\(address):9000",
                           "--store", postgres.url, "--loops", "1", "--header", "'X-Backend: \(address)'"]
            backends[address] = try SpawnedProcess(
                "/bin/sh", ["-c", "FCGI_WEB_SERVER_ADDRS=10.77.0.1 exec " + command.joined(separator: " ") + " >> \(logs)/\(address).log 2>&1"])
        }
        for address in Self.addresses {
            let end = monotonicSeconds() + 20
            while (try? TestClient(.ipv4(host: address, port: 9000), timeout: 1)) == nil {
                guard monotonicSeconds() < end else {
                    let log = (try? String(contentsOfFile: "\(logs)/\(address).log", encoding: .utf8)) ?? ""
                    throw TestClient.Failure(description: "backend \(address) did not start: \(log)")
                }
                usleep(50_000)
            }
        }
        let port = freePort()
        let conf = try shippedConfig(
            "nginx/needletail-cluster.conf",
            replacing: [
                ("listen 80;", "listen 127.0.0.1:\(port);"), ("listen [::]:80;", ""),
                ("server 10.0.0.11:9000", "server 10.77.0.11:9000"), ("server 10.0.0.12:9000", "server 10.77.0.12:9000"),
                ("server 10.0.0.13:9000", "server 10.77.0.13:9000"),
            ])
        let nginx = try WebServerProcess.nginx(serverBlocks: conf, port: port)
        defer { nginx.stop() }
        try body("http://127.0.0.1:\(port)", &backends, postgres)
    }

    /// The backend a browser's requests go to (the header every answer carries).
    func backend(of browser: Browser) throws -> String? {
        try browser.run("return fetch('/hello').then(r => r.headers.get('x-backend'))") as? String
    }

    /// Browsers until two are on different backends; each has its session and its board open.
    func twoOnDifferentBackends(_ driver: WebDriver, board: String) throws -> (Browser, Browser, String, String) {
        var made: [(Browser, String)] = []
        for _ in 0..<8 {
            let b = try driver.browser()
            // The first page comes from whichever backend has no cookie's key; the second,
            // with the cookie, from the session's own backend.
            try b.open(board)
            try b.open(board)
            // (The first page's runtime may have asked the session's backend, which does not
            // have that page: a 410 and a reload, once per new visitor; README says why.)
            _ = try b.consoleErrors()
            guard let at = try backend(of: b) else { throw TestClient.Failure(description: "no X-Backend") }
            if let other = made.first(where: { $0.1 != at }) {
                for (extra, _) in made where extra.id != other.0.id { extra.quit() }
                return (other.0, b, other.1, at)
            }
            made.append((b, at))
        }
        throw TestClient.Failure(description: "eight browsers, all on one backend")
    }

    func post(_ browser: Browser, _ text: String) throws {
        try browser.type(BrowserTests.postForm + " input[name=\"text\"]", text)
        try browser.click(BrowserTests.postForm + " button")
    }

    @Test(.enabled(if: Network.available && WebDriver.available && PostgresServer.binaries != nil))
    func browsersOnDifferentBackendsSeeEachOthersPostsLive() throws {
        try withCluster { base, _, postgres in
            for transport in ["events", "poll"] {
                let driver = try WebDriver()
                let board = base + "/board?forum=Debian&transport=" + transport
                let (a, b, atA, atB) = try twoOnDifferentBackends(driver, board: board)
                defer { a.quit(); b.quit() }
                #expect(atA != atB)
                for (browser, name) in [(a, "A"), (b, "B")] {
                    #expect(browser.wait(seconds: 5) { $0.contains("aria-live=\"polite\">live<") } != nil, "\(name) is live (\(transport))")
                }
                let viewB = b.viewID
                let text = "From \(atA) \(Int.random(in: 0..<1_000_000))"
                try post(a, text)
                let seen = b.wait(seconds: 1) { $0.contains(text) }
                #expect(seen != nil, "B (on \(atB)) shows A's post (on \(atA)) within 1 s over \(transport)")
                print("cluster: a post on \(atA) appeared on \(atB) after \(seen.map { String(Int($0 * 1000)) } ?? "-") ms (\(transport))")
                #expect(b.viewID == viewB, "without reloading")
                let back = "Back from \(atB) \(Int.random(in: 0..<1_000_000))"
                try post(b, back)
                #expect(a.wait(seconds: 1) { $0.contains(back) } != nil, "and A shows B's within 1 s")
                for browser in [a, b] {
                    let errors = try browser.consoleErrors()
                    #expect(errors.isEmpty, "console errors: \(errors)")
                }
            }

            // PostgreSQL restarted: the backends reconnect, the viewers follow again, and
            // what was acknowledged before is still there.
            let driver = try WebDriver()
            let board = base + "/board?forum=Gentoo&transport=events"
            let (a, b, _, _) = try twoOnDifferentBackends(driver, board: board)
            defer { a.quit(); b.quit() }
            let before = "Before the restart \(Int.random(in: 0..<1_000_000))"
            try post(a, before)
            #expect(b.wait(seconds: 2) { $0.contains(before) } != nil)
            postgres.stop(keepingData: true)
            try postgres.start()
            let after = "After the restart \(Int.random(in: 0..<1_000_000))"
            // The first post may meet a connection the backend has not yet found broken (a
            // 500, not acknowledged); the page is reloaded and posted again, as a visitor would.
            var shown: Double? = nil
            for _ in 0..<5 where shown == nil {
                try a.open(board)
                try post(a, after)
                shown = b.wait(seconds: 3) { $0.contains(after) }
            }
            #expect(shown != nil, "a post after the restart reaches the other backend's viewer")
            #expect(b.source.contains(before), "the post from before the restart is there")
        }
    }

    /// Visitors posting in turn through nginx (one keep-alive connection each); kill -9 of one
    /// backend meanwhile. Every acknowledged post (303) is on the board afterwards, and the
    /// killed backend's visitors go on elsewhere under the same name.
    @Test(.enabled(if: Network.available && PostgresServer.binaries != nil))
    func killingABackendUnderLoadLosesNoAcknowledgedPost() throws {
        try withCluster { base, backends, _ in
            let port = UInt16(base.split(separator: ":").last!)!
            struct Visitor {
                var cookie: String, name: String, backend: String
            }
            @Sendable func get(_ target: String, cookie: String?) throws -> TestClient.Response {
                let c = try TestClient(.ipv4(host: "127.0.0.1", port: port), timeout: 10)
                try c.send("GET \(target) HTTP/1.1\r\nHost: t\r\nConnection: close\r\n" + (cookie.map { "Cookie: nt_session=\($0)\r\n" } ?? "") + "\r\n")
                return try c.readResponse()
            }
            @Sendable func field(_ text: String, after marker: String, until end: Character) -> String? {
                guard let r = text.range(of: marker) else { return nil }
                return String(text[r.upperBound...].prefix { $0 != end })
            }
            // Visitors until each backend has some.
            var visitors: [Visitor] = []
            for _ in 0..<24 {
                let first = try get("/board?forum=Ubuntu", cookie: nil)
                guard let setCookie = first.header("set-cookie"), let cookie = field(setCookie, after: "nt_session=", until: ";") else { continue }
                let page = try get("/board?forum=Ubuntu", cookie: cookie)
                guard let name = field(page.text, after: "You post as <strong>", until: "<"), let at = page.header("x-backend") else { continue }
                visitors.append(Visitor(cookie: cookie, name: name, backend: at))
            }
            let victim = try #require(visitors.first?.backend)
            #expect(visitors.contains { $0.backend != victim }, "visitors on more than one backend")

            let acknowledged = LockedList()
            let stop = Atomic<Bool>(false)
            let threads = visitors.enumerated().map { i, v in
                Thread {
                    var n = 0
                    while !stop.load(ordering: .relaxed) {
                        n += 1
                        let text = "load-\(i)-\(n)"
                        guard let page = try? get("/board?forum=Ubuntu", cookie: v.cookie),
                            let action = field(page.text, after: "<form method=\"post\" action=\"", until: "\"")
                        else { continue }
                        let form = "text=" + text
                        guard let c = try? TestClient(.ipv4(host: "127.0.0.1", port: port), timeout: 10) else { continue }
                        try? c.send(
                            "POST \(action) HTTP/1.1\r\nHost: t\r\nConnection: close\r\nCookie: nt_session=\(v.cookie)\r\nSec-Fetch-Site: same-origin\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: \(form.utf8.count)\r\n\r\n\(form)"
                        )
                        if let r = try? c.readResponse(), r.status == 303 { acknowledged.add(text) }
                    }
                }
            }
            threads.forEach { $0.start() }
            usleep(1_000_000)
            let killedAt = acknowledged.count
            kill(backends[victim]!.pid, SIGKILL)
            usleep(2_000_000)
            stop.store(true, ordering: .relaxed)
            usleep(1_000_000)
            #expect(acknowledged.count > killedAt, "posts went on after the kill (\(killedAt) → \(acknowledged.count))")

            print("cluster: \(acknowledged.count) posts acknowledged, \(killedAt) before kill -9 of \(victim)")
            let board = try get("/board?forum=Ubuntu", cookie: nil).text
            let missing = acknowledged.all.filter { !board.contains(">\($0)<") && !board.contains(" \($0) ") && !board.contains(" \($0)<") }
            #expect(missing.isEmpty, "acknowledged but not on the board: \(missing.prefix(10)) of \(acknowledged.count)")
            for v in visitors where v.backend == victim {
                let page = try get("/board?forum=Ubuntu", cookie: v.cookie)
                #expect(page.status == 200)
                #expect(page.header("x-backend") != victim)
                #expect(field(page.text, after: "You post as <strong>", until: "<") == v.name, "the same name on another backend")
                #expect(page.header("set-cookie") == nil, "the same session")
            }
        }
    }
}

/// Texts from several threads.
final class LockedList: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [String] = []
    func add(_ s: String) { lock.lock(); items.append(s); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return items }
    var count: Int { all.count }
}
