import NeedletailTestSupport
import Foundation
import Glibc
import Testing

/// The shipped nginx and lighttpd files installed the way README says into a copy of Debian's
/// stock configuration (its default site enabled), with the demo's board used in Chromium
/// through each of them.
@Suite("Shipped configs in Debian's stock layout", .serialized)
struct DebianLayoutTests {
    static let nginxInstalled =
        FileManager.default.fileExists(atPath: "/etc/nginx/nginx.conf") && FileManager.default.fileExists(atPath: "/usr/sbin/nginx")
    static let lighttpdInstalled =
        FileManager.default.fileExists(atPath: "/etc/lighttpd/lighttpd.conf")
        && FileManager.default.fileExists(atPath: "/usr/sbin/lighttpd")

    /// One GET with `host`; the answer.
    func get(_ port: UInt16, _ target: String, host: String) throws -> TestClient.Response {
        let c = try TestClient(.ipv4(host: "127.0.0.1", port: port))
        try c.send("GET \(target) HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n\r\n")
        return try c.readResponse()
    }

    /// README's nginx steps with `site` (unix or TCP): the app started as www-data, the file
    /// copied to sites-available and linked from sites-enabled beside Debian's default site.
    func nginxSite(
        _ site: String, replacing: [(String, String)] = [], app arguments: (DebianLayout) -> [String],
        ready: (DebianLayout) -> Bool
    ) throws {
        let port = freePort()
        let layout = try DebianLayout(copying: "/etc/nginx", port: port)
        #expect(FileManager.default.fileExists(atPath: layout.path("/etc/nginx/sites-enabled/default")), "Debian's default site is enabled")
        try layout.installDemo()
        try layout.makeFolderForWWWData("/run/needletail")
        try layout.makeFolderForWWWData("/var/lib/needletail")
        let app = try layout.startDemo(arguments(layout))
        defer { app.stop() }
        for _ in 0..<200 where !ready(layout) { usleep(20_000) }
        #expect(ready(layout), "the app listens")
        try layout.installShipped(site, as: "/etc/nginx/sites-available/needletail", replacing: replacing)
        try layout.link("../sites-available/needletail", at: "/etc/nginx/sites-enabled/needletail")

        let check = try run("/usr/sbin/nginx", ["-t"] + layout.nginxArguments.dropLast(2))
        #expect(check.status == 0, "nginx -t: \(check.output)")
        #expect(!check.output.contains("conflicting server name"), "nginx -t: \(check.output)")
        let nginx = try WebServerProcess.stockNginx(layout, port: port)
        defer { nginx.stop() }
        #expect(!nginx.errorLog.contains("conflicting server name"), "\(nginx.errorLog)")

        // The site's name reaches the app; any other name still gets Debian's default site.
        var hello: TestClient.Response?
        for _ in 0..<100 {  // the app may still be opening its socket
            hello = try? get(port, "/hello?name=%3Cnginx%3E", host: "needletail.localhost")
            if hello?.status == 200 { break }
            usleep(50_000)
        }
        #expect(hello?.text == "<h1>Hello &lt;nginx&gt;</h1>", "\(nginx.errorLog)")
        let other = try get(port, "/hello?name=x", host: "127.0.0.1")
        #expect(other.status == 404 && !other.text.contains("Hello"), "the default site keeps other names")
        let stream = try get(port, "/_nt/events?v=none", host: "needletail.localhost")
        #expect(stream.status == 410, "the live endpoints reach the app through their location")

        if WebDriver.available {
            let base = "http://needletail.localhost:\(port)"
            try BrowserTests().exercise(base: base, transport: "events")
            try BrowserTests().exercise(base: base, transport: "poll")
        }
        #expect(!nginx.errorLog.contains("[error]"), "\(nginx.errorLog)")
    }

    @Test(.enabled(if: nginxInstalled))
    func nginxUnixSiteBesideTheDefaultSite() throws {
        try nginxSite("nginx/needletail-unix.conf") { layout in
            [
                "serve", "--fastcgi", "unix:" + layout.path("/run/needletail/app.sock"), "--socket-mode", "660",
                "--data", layout.path("/var/lib/needletail"),
            ]
        } ready: { layout in
            FileManager.default.fileExists(atPath: layout.path("/run/needletail/app.sock"))
        }
    }

    @Test(.enabled(if: nginxInstalled))
    func nginxTCPSiteBesideTheDefaultSite() throws {
        let appPort = freePort()
        try nginxSite("nginx/needletail-tcp.conf", replacing: [("127.0.0.1:9000", "127.0.0.1:\(appPort)")]) { layout in
            ["serve", "--fastcgi", "127.0.0.1:\(appPort)", "--data", layout.path("/var/lib/needletail")]
        } ready: { _ in
            waitForPort(appPort, seconds: 0.1)
        }
    }

    /// README's lighttpd steps: `conf` copied to conf-available and linked from conf-enabled
    /// beside Debian's lighttpd.conf; `before` starts what must run first (an app on a socket).
    func lighttpd(
        _ conf: String, before: (DebianLayout) throws -> SpawnedProcess? = { _ in nil },
        _ body: (DebianLayout, WebServerProcess) throws -> Void
    ) throws {
        let port = freePort()
        let layout = try DebianLayout(copying: "/etc/lighttpd", port: port)
        try layout.installDemo()
        try layout.makeFolderForWWWData("/run/needletail")
        try layout.makeFolderForWWWData("/var/lib/needletail")
        let app = try before(layout)
        defer { app?.stop() }
        try layout.installShipped(conf, as: "/etc/lighttpd/conf-available/50-needletail.conf")
        try layout.link("../conf-available/50-needletail.conf", at: "/etc/lighttpd/conf-enabled/50-needletail.conf")
        let check = try run("/usr/sbin/lighttpd", ["-tt", "-f", layout.path("/etc/lighttpd/lighttpd.conf")])
        #expect(check.status == 0 && !check.output.contains("WARNING"), "lighttpd -tt: \(check.output)")
        let lighttpd = try WebServerProcess.stockLighttpd(layout, port: port)
        defer { lighttpd.stop() }
        try body(layout, lighttpd)
    }

    /// The board in two browsers and one without JavaScript at `base`, over both transports.
    func board(_ base: String) throws {
        guard WebDriver.available else { return }
        try BrowserTests().exercise(base: base, transport: "events")
        try BrowserTests().exercise(base: base, transport: "poll")
    }

    /// Waits (up to 10 s) until `target` answers 200 on lighttpd's port; the answer.
    func firstAnswer(_ port: UInt16, _ target: String) -> TestClient.Response? {
        var r: TestClient.Response?
        for _ in 0..<200 {
            r = try? get(port, target, host: "127.0.0.1")
            if r?.status == 200 { break }
            usleep(50_000)
        }
        return r
    }

    @Test(.enabled(if: lighttpdInstalled))
    func lighttpdWithTheAppOnASocket() throws {
        try lighttpd(
            "lighttpd/needletail-socket.conf",
            before: { layout in
                try layout.startDemo([
                    "serve", "--fastcgi", "unix:" + layout.path("/run/needletail/app.sock"), "--socket-mode", "660",
                    "--data", layout.path("/var/lib/needletail"),
                ])
            }
        ) { layout, lighttpd in
            #expect(
                firstAnswer(lighttpd.port, "/hello?name=%3Clighttpd%3E")?.text == "<h1>Hello &lt;lighttpd&gt;</h1>", "\(lighttpd.errorLog)")
            try board("http://127.0.0.1:\(lighttpd.port)")
        }
    }

    @Test(.enabled(if: lighttpdInstalled))
    func lighttpdSpawnsTheAppWithItsDataAndLog() throws {
        try lighttpd("lighttpd/needletail-spawn.conf") { layout, lighttpd in
            #expect(firstAnswer(lighttpd.port, "/hello?name=spawned")?.text == "<h1>Hello spawned</h1>", "\(lighttpd.errorLog)")
            try board("http://127.0.0.1:\(lighttpd.port)")
            #expect(
                FileManager.default.fileExists(atPath: layout.path("/var/lib/needletail/board.log")), "the posts are in the data folder")
            let log = (try? String(contentsOfFile: layout.path("/var/log/lighttpd/needletail.log"), encoding: .utf8)) ?? ""
            #expect(log.contains("listening on FastCGI on inherited fd 0"), "the app's log: \(log)")
        }
    }

    /// The operator forgot to create the data folder: the board answers 503 and the app's log,
    /// where the shipped file puts it, says which folder and why.
    @Test(.enabled(if: lighttpdInstalled))
    func aSpawnedAppThatCannotOpenItsDataSaysWhyInItsLog() throws {
        try lighttpd(
            "lighttpd/needletail-spawn.conf",
            before: { layout in
                try FileManager.default.removeItem(atPath: layout.path("/var/lib/needletail"))
                if DebianLayout.wwwData == nil { chmod(layout.path("/var/lib"), 0o555) }  // (root could write anyway)
                return nil
            }
        ) { layout, lighttpd in
            defer { chmod(layout.path("/var/lib"), 0o755) }
            #expect(firstAnswer(lighttpd.port, "/hello?name=x")?.status == 200, "\(lighttpd.errorLog)")
            let board = try get(lighttpd.port, "/board", host: "127.0.0.1")
            #expect(board.status == 503)
            let log = (try? String(contentsOfFile: layout.path("/var/log/lighttpd/needletail.log"), encoding: .utf8)) ?? ""
            #expect(
                log.contains("cannot create the data folder \(layout.path("/var/lib/needletail")): Permission denied"),
                "the app's log: \(log)")
        }
    }

    /// CGI: the start page and the hello page in Chromium, through mod_cgi; the board says
    /// plainly that it needs a long-running process.
    @Test(.enabled(if: lighttpdInstalled))
    func lighttpdRunsTheAppAsCGI() throws {
        try lighttpd("lighttpd/needletail-cgi.conf") { layout, lighttpd in
            #expect(firstAnswer(lighttpd.port, "/app/hello?name=%3Ccgi%3E")?.text == "<h1>Hello &lt;cgi&gt;</h1>", "\(lighttpd.errorLog)")
            let board = try get(lighttpd.port, "/app/board", host: "127.0.0.1")
            #expect(board.status == 503 && board.text.contains("FastCGI"), "\(board.text)")
            let c = try TestClient(.ipv4(host: "127.0.0.1", port: lighttpd.port))
            try c.send("POST /app/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc")
            #expect(try c.readResponse().text.hasPrefix("3 "), "a body reaches the CGI run")
            guard WebDriver.available else { return }
            let driver = try WebDriver()
            let browser = try driver.browser()
            defer { browser.quit() }
            try browser.open("http://127.0.0.1:\(lighttpd.port)/app/")
            #expect(browser.wait(seconds: 5) { $0.contains("Needletail demo") } != nil)
            let errors = try browser.consoleErrors()
            #expect(errors.isEmpty, "console errors: \(errors)")
            // (The hello page is the talk's bare <h1>: it has no head, so no icon link.)
            try browser.click("a[href^=\"hello\"]")
            #expect(browser.wait(seconds: 5) { $0.contains("Hello world") } != nil, "the start page's link works under /app/")
        }
    }
}
