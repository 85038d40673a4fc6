import NeedletailTestSupport
import Foundation
import Glibc
import NeedletailLoop
import Testing

/// A minimal W3C WebDriver client for Debian's chromedriver driving headless Chromium.
final class WebDriver {
    let port: UInt16
    let process: SpawnedProcess
    let profiles = makeTempDir("needletail-chromium")

    static var available: Bool {
        FileManager.default.isExecutableFile(atPath: "/usr/bin/chromedriver")
            && FileManager.default.isExecutableFile(atPath: "/usr/bin/chromium")
    }

    init() throws {
        port = freePort()
        process = try SpawnedProcess("/usr/bin/chromedriver", ["--port=\(port)"])
        guard waitForPort(port, seconds: 20) else { throw TestClient.Failure(description: "chromedriver did not start") }
    }

    deinit { process.stop() }

    /// Sends a command; returns the `value` of the answer.
    @discardableResult
    func command(_ method: String, _ path: String, _ body: Any? = nil) throws -> Any? {
        let json = try body.map { try JSONSerialization.data(withJSONObject: $0) } ?? Data()
        let c = try TestClient(.ipv4(host: "127.0.0.1", port: port), timeout: 60)
        try c.send(
            "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: \(json.count)\r\nConnection: close\r\n\r\n"
        )
        try c.send([UInt8](json))
        let r = try c.readResponse()
        let object = try JSONSerialization.jsonObject(with: Data(r.body), options: [.fragmentsAllowed]) as? [String: Any]
        if r.status != 200 { throw TestClient.Failure(description: "WebDriver \(method) \(path): \(r.status) \(r.text.prefix(400))") }
        return object?["value"]
    }

    /// A new, independent browser (own profile); `javascript: false` turns scripts off,
    /// `cookies: false` makes it refuse every cookie; `insecureCertificates` accepts the tests'
    /// self-signed ones.
    func browser(javascript: Bool = true, cookies: Bool = true, insecureCertificates: Bool = false) throws -> Browser {
        var prefs: [String: Any] = [:]
        if !javascript { prefs["profile.managed_default_content_settings.javascript"] = 2 }
        if !cookies { prefs["profile.default_content_setting_values.cookies"] = 2 }
        let profile = profiles + "/p\(Int.random(in: 0..<1_000_000))"
        let caps: [String: Any] = [
            "capabilities": [
                "alwaysMatch": [
                    "browserName": "chrome",
                    "goog:chromeOptions": [
                        "binary": "/usr/bin/chromium",
                        "args": [
                            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--user-data-dir=" + profile,
                        ],
                        "prefs": prefs,
                    ] as [String: Any],
                    "goog:loggingPrefs": ["browser": "ALL"],
                    "acceptInsecureCerts": insecureCertificates,
                ] as [String: Any]
            ]
        ]
        let value = try command("POST", "/session", caps) as? [String: Any]
        guard let id = value?["sessionId"] as? String else {
            throw TestClient.Failure(description: "no session: \(String(describing: value))")
        }
        return Browser(driver: self, id: id)
    }
}

struct Browser {
    let driver: WebDriver
    let id: String

    func open(_ url: String) throws { try driver.command("POST", "/session/\(id)/url", ["url": url]) }
    var source: String { ((try? driver.command("GET", "/session/\(id)/source")) as? String) ?? "" }
    func element(_ css: String) throws -> String {
        let v = try driver.command("POST", "/session/\(id)/element", ["using": "css selector", "value": css]) as? [String: Any]
        guard let e = v?.values.first as? String else { throw TestClient.Failure(description: "no element \(css)") }
        return e
    }
    func type(_ css: String, _ text: String) throws {
        try driver.command("POST", "/session/\(id)/element/\(try element(css))/value", ["text": text])
    }
    func click(_ css: String) throws { try driver.command("POST", "/session/\(id)/element/\(try element(css))/click", [String: Any]()) }
    /// The browser console's messages at level SEVERE (errors, CSP violations).
    func consoleErrors() throws -> [String] {
        let entries = try driver.command("POST", "/session/\(id)/se/log", ["type": "browser"]) as? [[String: Any]] ?? []
        return entries.filter { ($0["level"] as? String) == "SEVERE" }.map { "\($0["message"] ?? "")" }
    }
    func quit() { _ = try? driver.command("DELETE", "/session/\(id)") }
    /// Runs `script` in the page (WebDriver's own channel: not subject to the page's CSP).
    @discardableResult
    func run(_ script: String) throws -> Any? {
        try driver.command("POST", "/session/\(id)/execute/sync", ["script": script, "args": [Any]()])
    }

    /// Polls `condition` on the page source every 20 ms for up to `seconds`; returns the time
    /// it took, or nil.
    func wait(seconds: Double, until condition: (String) -> Bool) -> Double? {
        let start = Date()
        while Date().timeIntervalSince(start) < seconds {
            if condition(source) { return Date().timeIntervalSince(start) }
            usleep(20_000)
        }
        return nil
    }

    var viewID: String? {
        let s = source
        guard let r = s.range(of: "data-nt-view=\"") else { return nil }
        return String(s[r.upperBound...].prefix { $0 != "\"" })
    }
}

@Suite(.serialized) struct BrowserTests {
    static let postForm = "form[data-nt=\"form\"]:has(input[name=\"text\"])"

    /// Two browsers with JavaScript and one without on the board at `base`: a post from each
    /// appears in the other JavaScript browser within 1 s, without a reload; the one without
    /// JavaScript gets POST, redirect, GET; no console errors under the page's CSP.
    func exercise(base: String, transport: String) throws {
        let driver = try WebDriver()
        let tls = base.hasPrefix("https:")
        let a = try driver.browser(insecureCertificates: tls), b = try driver.browser(insecureCertificates: tls)
        let noJS = try driver.browser(javascript: false, insecureCertificates: tls)
        defer { a.quit(); b.quit(); noJS.quit() }
        let board = base + "/board?forum=Debian&transport=" + transport
        try a.open(board)
        try b.open(board)
        // The runtime has started when its status element says so.
        let live = b.wait(seconds: 5) { $0.contains("aria-live=\"polite\">live<") }
        #expect(live != nil, "B's runtime follows the channels")
        if transport == "events" {
            // The first event arrives at once; the long-poll fallback would start only after 3 s.
            #expect((live ?? 9) < 2.5, "server-sent events got through (no fallback)")
        }
        let viewB = b.viewID
        let text = "Hello from A <TLUG> \(Int.random(in: 0..<1_000_000))"
        try a.type(Self.postForm + " input[name=\"text\"]", text)
        try a.click(Self.postForm + " button")
        let escaped = text.replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
        let seen = b.wait(seconds: 1) { $0.contains(escaped) }
        #expect(seen != nil, "B shows A's post within 1 s")
        print("browser: A's post appeared in B after \(seen.map { String(Int($0 * 1000)) } ?? "-") ms (\(base), \(transport))")
        #expect(b.viewID == viewB, "without reloading")
        #expect(a.wait(seconds: 2) { $0.contains(escaped) } != nil, "and in A itself")

        // Without JavaScript: the form posts, the server redirects, the page shows the post.
        try noJS.open(board)
        let plain = "No script here \(Int.random(in: 0..<1_000_000))"
        try noJS.type(Self.postForm + " input[name=\"text\"]", plain)
        try noJS.click(Self.postForm + " button")
        #expect(noJS.wait(seconds: 5) { $0.contains(plain) } != nil, "POST, redirect, GET shows the post")
        #expect(b.wait(seconds: 1) { $0.contains(plain) } != nil, "and B sees it live")

        // Deleting an own post, live in the other browser.
        try a.click("li:has(.author) form button")
        #expect(b.wait(seconds: 1) { !$0.contains(escaped) } != nil, "A's deletion reaches B")

        for browser in [a, b] {
            let errors = try browser.consoleErrors()
            #expect(errors.isEmpty, "console errors: \(errors)")
        }
    }

    /// A browser that refuses cookies on the board at `base`: its session follows it in the
    /// forms, the redirect-free background post, the runtime's polls and the forum links, so
    /// its own post comes back live with its delete button, and still has it after two links.
    func withoutCookies(base: String, transport: String) throws {
        let driver = try WebDriver()
        let c = try driver.browser(cookies: false)
        defer { c.quit() }
        try c.open(base + "/board?forum=Debian&transport=" + transport)
        #expect(
            c.wait(seconds: 5) { $0.contains("aria-live=\"polite\">live<") } != nil, "the runtime follows the channels without a cookie")
        let view = c.viewID
        // Links the runtime will see again when the update is applied: a path gets the id, a
        // protocol-relative link (another site) must not.
        try c.run(
            "document.body.insertAdjacentHTML('beforeend', '<a id=\"away\" href=\"//example.invalid/x?y=1\">a</a><a id=\"here\" href=\"/board?forum=Gentoo\">h</a>')"
        )
        let text = "No cookies here \(Int.random(in: 0..<1_000_000))"
        try c.type(Self.postForm + " input[name=\"text\"]", text)
        try c.click(Self.postForm + " button")
        // Its own post, rendered for its session: with a delete button.
        func ownPost(_ page: String) -> Bool {
            guard let r = page.range(of: text) else { return false }
            return page[r.upperBound...].prefix(600).contains(">delete</button>")
        }
        #expect(c.wait(seconds: 2) { ownPost($0) } != nil, "the post comes back live, as its author's")
        #expect(c.viewID == view, "without reloading")
        let away = try c.run("return document.getElementById('away').getAttribute('href')") as? String
        let here = try c.run("return document.getElementById('here').getAttribute('href')") as? String
        #expect(away == "//example.invalid/x?y=1", "another site never sees the id")
        #expect(here?.contains("/board?forum=Gentoo&_s=") == true, "this site's links keep the session: \(here ?? "-")")
        try c.click("nav a[href*=\"forum=Gentoo\"]")
        #expect(c.wait(seconds: 5) { $0.contains("Forum Gentoo") } != nil)
        try c.click("nav a[href*=\"forum=Debian\"]")
        #expect(c.wait(seconds: 5) { $0.contains("Forum Debian") && ownPost($0) } != nil, "still the same session after two links")
        #expect(c.wait(seconds: 5) { $0.contains("aria-live=\"polite\">live<") } != nil)
        try c.click("li:has(.author) form button")
        #expect(c.wait(seconds: 2) { !$0.contains(text) } != nil, "and it can delete its post")
        let errors = try c.consoleErrors()
        #expect(errors.isEmpty, "console errors: \(errors)")
    }

    /// Every page of the demo a visitor can reach, natively: no console error (a missing icon,
    /// a CSP violation, a failed request).
    @Test(.enabled(if: WebDriver.available)) func theConsoleStaysCleanOnEveryDemoPage() throws {
        let data = makeTempDir("needletail-console")
        let port = freePort()
        let server = try SpawnedProcess(demoBinary(), ["serve", "--http", "127.0.0.1:\(port)", "--data", data, "--loops", "1"])
        defer { server.stop() }
        #expect(waitForPort(port))
        let driver = try WebDriver()
        for path in ["/", "/hello?name=console", "/fortunes", "/board", "/board?forum=Gentoo&transport=poll"] {
            let browser = try driver.browser()
            defer { browser.quit() }
            try browser.open("http://127.0.0.1:\(port)" + path)
            usleep(1_500_000)  // the icon request and the runtime's first poll or event
            let errors = try browser.consoleErrors()
            #expect(errors.isEmpty, "\(path): \(errors)")
        }
    }

    @Test(.enabled(if: WebDriver.available)) func liveBoardNatively() throws {
        let data = makeTempDir("needletail-board")
        let port = freePort()
        let server = try SpawnedProcess(demoBinary(), ["serve", "--http", "127.0.0.1:\(port)", "--data", data, "--loops", "2"])
        defer { server.stop() }
        #expect(waitForPort(port))
        try exercise(base: "http://127.0.0.1:\(port)", transport: "events")
        try exercise(base: "http://127.0.0.1:\(port)", transport: "poll")
        try withoutCookies(base: "http://127.0.0.1:\(port)", transport: "events")
        try withoutCookies(base: "http://127.0.0.1:\(port)", transport: "poll")
    }

    /// The board natively over HTTPS (TLS 1.3, ALPN http/1.1): live updates by events and by
    /// long-polls, the session cookie `Secure`.
    @Test(.enabled(if: WebDriver.available && toolAvailable("openssl"))) func liveBoardOverHTTPS() throws {
        try withDemoOverHTTPS { base in
            try exercise(base: base, transport: "events")
            try exercise(base: base, transport: "poll")
        }
    }

    /// The demo on an HTTPS listener of its own (a fresh self-signed certificate, two loops,
    /// `extra` arguments), for `body` with its base URL.
    private func withDemoOverHTTPS(_ extra: [String] = [], _ body: (String) throws -> Void) throws {
        let certificate = try TestCertificate()
        defer { certificate.remove() }
        let port = freePort()
        let server = try SpawnedProcess(
            demoBinary(),
            ["serve", "--https", "127.0.0.1:\(port)"] + extra
                + ["--cert", certificate.cert, "--key", certificate.key, "--data", certificate.directory + "/data", "--loops", "2"])
        defer { server.stop() }
        #expect(waitForPort(port))
        try body("https://127.0.0.1:\(port)")
    }

    /// The board over HTTP/2 (ALPN h2): every request of the page, the actions and the
    /// live updates on one multiplexed connection.
    @Test(.enabled(if: WebDriver.available && toolAvailable("openssl"))) func liveBoardOverHTTP2() throws {
        try withDemoOverHTTPS(["--http2"]) { base in
            let driver = try WebDriver()
            let probe = try driver.browser(insecureCertificates: true)
            try probe.open(base + "/board")
            let used = try probe.run("return performance.getEntriesByType('navigation')[0].nextHopProtocol") as? String
            probe.quit()
            #expect(used == "h2", "Chromium spoke \(used ?? "-")")
            try exercise(base: base, transport: "events")
            try exercise(base: base, transport: "poll")
        }
    }
}
