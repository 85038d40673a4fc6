import NeedletailTestSupport
import Foundation
import Glibc
import NeedletailLoop
import Testing

/// Live modification as a visitor in headless Chromium sees it: a post made during an upgrade
/// appears without a manual reload and the visitor keeps its user name. (Development mode's
/// browser check is `scripts/dev-check`: it rebuilds the demo, which SwiftPM's lock on the
/// build folder forbids while `swift test` runs.)
@Suite(.serialized) struct LiveModificationBrowserTests {
    static func userName(_ page: String) -> String? { UpgradeTests.Visitor.name(in: page) }

    @Test(.enabled(if: WebDriver.available)) func aPostDuringAnUpgradeAppearsWithoutAReload() throws {
        let server = try UpgradeTests.Upgradable()
        defer { server.stop() }
        let driver = try WebDriver()
        let browser = try driver.browser()
        defer { browser.quit() }
        try browser.open("http://127.0.0.1:\(server.port)/board?forum=Ubuntu")
        #expect(browser.wait(seconds: 5) { $0.contains("aria-live=\"polite\">live<") } != nil, "the runtime follows the board")
        let name = Self.userName(browser.source)
        #expect(name != nil)
        // Half a post typed when the new build takes over: the page reloads (its view is gone)
        // and the draft is back in the same field.
        let field = BrowserTests.postForm + " [name=\"text\"]"
        let draft = "typed before the upgrade \(Int.random(in: 0..<1_000_000))"
        try browser.type(field, draft)
        let old = server.pid
        let offset = server.log.utf8.count
        kill(old, SIGUSR2)
        // A post while the processes change (it lands on whichever serves then).
        var poster = UpgradeTests.Visitor(port: server.port)
        let text = "made during the upgrade \(Int.random(in: 0..<1_000_000))"
        var status = try poster.post(text, forum: "Ubuntu")
        if status == 410 { status = try poster.post(text, forum: "Ubuntu") }  // the form's page came from the old one
        #expect(status == 303)
        #expect(server.successor(since: offset) != nil, "a new process takes over")
        #expect(server.waitGone(old), "the old process stops")
        let seen = browser.wait(seconds: 10) { $0.contains(text) }
        #expect(seen != nil, "the open page shows the post without a reload by hand")
        print("browser: a post made during an upgrade appeared after \(seen.map { String(Int($0 * 1000)) } ?? "-") ms")
        #expect(browser.wait(seconds: 5) { $0.contains("aria-live=\"polite\">live<") } != nil, "and is live again")
        #expect(Self.userName(browser.source) == name, "with the same user name")
        let kept = try browser.run("return document.querySelector('\(field.replacingOccurrences(of: "\"", with: "\\\""))').value") as? String
        #expect(kept == draft, "the draft survives the reload")
        let errors = try browser.consoleErrors().filter { !$0.contains("/_nt/") }  // the 410 and the ended stream are expected
        #expect(errors.isEmpty, "console errors: \(errors)")
    }
}
