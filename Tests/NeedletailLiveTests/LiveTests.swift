import Foundation
import NeedletailBytes
import NeedletailHTML
import NeedletailHTTP
import NeedletailLive
import NeedletailLoop
import NeedletailPOSIX
import NeedletailTesting
import NeedletailTestSupport
import Synchronization
import Testing

/// A clock the tests move by hand.
final class FakeClock: Sendable {
    let now = Atomic<UInt64>(1000)
    var read: @Sendable () -> UInt64 { { self.now.load(ordering: .relaxed) } }
    func advance(_ s: UInt64) { now.add(s, ordering: .relaxed) }
}

func get(_ path: String, query: String = "", cookie: String? = nil, headers: [(String, String)] = []) -> Request {
    var h = headers
    if let cookie { h.append(("Cookie", cookie)) }
    return Request(
        method: .get, path: path, query: QueryParameters(query), headers: HeaderFields(h), target: query.isEmpty ? path : path + "?" + query
    )
}

func post(_ path: String, form: String = "", cookie: String? = nil, headers: [(String, String)] = []) -> Request {
    var h = headers + [("Content-Type", "application/x-www-form-urlencoded")]
    if let cookie { h.append(("Cookie", cookie)) }
    return Request(method: .post, path: path, headers: HeaderFields(h), body: Array(form.utf8))
}

func header(_ r: Response, _ name: String) -> String? { r.allHeaders.first { $0.name.lowercased() == name.lowercased() }?.value }

/// `nt_session=ID` from a Set-Cookie value.
func cookiePair(_ r: Response) -> String? { header(r, "Set-Cookie").map { String($0.split(separator: ";")[0]) } }

final class Counter: Sendable {
    let value = Mutex(0)
    func withLock<T>(_ body: (inout Int) -> T) -> T { value.withLock { body(&$0) } }
}

/// A page with a counter in a live region and a form that bumps it.
func counterApp(sessions: SessionStore = SessionStore()) -> (LiveApp, Counter) {
    let counter = Counter()
    var app = LiveApp(core: LiveAppCore(sessions: sessions))
    let channels = app.channels
    app.page("/counter") { page in
        .html(
            Div {
                page.live("count", channels: ["counter"]) { _ in P { counter.withLock { $0 } } }
                page.actionForm({ _ in
                    counter.withLock { $0 += 1 }; channels.notify("counter")
                }) { Button("+1") }
                page.liveStatus()
            })
    }
    return (app, counter)
}

func actionPath(in body: String) -> String? { actionPaths(in: body).first }

/// Every action address in `body`, in order.
func actionPaths(in body: String) -> [String] {
    var found: [String] = []
    var rest = body[...]
    while let r = rest.range(of: "action=\"/_nt/a/") {
        found.append("/_nt/a/" + rest[r.upperBound...].prefix { $0 != "\"" })
        rest = rest[r.upperBound...]
    }
    return found
}

@Suite struct SessionTests {
    @Test func idsAreRandomHexAndUnique() {
        var seen = Set<String>()
        for _ in 0..<1000 {
            let t = randomToken()
            #expect(t.count == 32 && t.allSatisfy { $0.isHexDigit })
            seen.insert(t)
        }
        #expect(seen.count == 1000)
    }

    @Test func viewAndActionIDsAreSmallURLSafeAndUnique() {
        var seen = Set<String>()
        var used = Set<Character>()
        for _ in 0..<4000 {
            let id = randomID()
            #expect(id.utf8.count == 15 && id.utf8.allSatisfy { b in
                (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || (b >= 48 && b <= 57) || b == 45 || b == 95
            })
            seen.insert(id)
            used.formUnion(id)
        }
        #expect(seen.count == 4000)
        // 60,000 draws over 64 characters: every one of them turns up.
        #expect(used.count == 64)
    }

    @Test func cookieFlagsAndLookup() {
        let store = SessionStore()
        let (s, source) = store.session(for: get("/"))
        #expect(source == .new)
        let cookie = store.cookie(for: s, request: get("/"))
        #expect(cookie == "nt_session=\(s.id); Path=/; HttpOnly; SameSite=Lax")
        #expect(store.cookie(for: s, request: get("/", headers: [("X-Forwarded-Proto", "https")])).hasSuffix("; Secure"))
        let again = store.session(for: get("/", cookie: "a=b; nt_session=\(s.id); c=d"))
        #expect(again.session === s && again.source == .cookie)
        #expect(store.session(for: get("/", query: "_s=\(s.id)")).session === s, "URL fallback when cookies are refused")
        #expect(s.userName.hasPrefix("user-") && s.userName.count == 17)
        // Other users see the name: it must tell them nothing of the id (it once was its prefix).
        #expect(!s.id.contains(s.userName.dropFirst(5)))
        #expect(store.session(for: get("/")).session.userName != s.userName)
        #expect(
            store.session(for: get("/", cookie: "nt_session=0123456789abcdef0123456789abcdef")).source == .new,
            "unknown ids are never adopted")
    }

    @Test func idleSessionsExpire() {
        let clock = FakeClock()
        let store = SessionStore(idleTimeout: 60, clock: clock.read)
        let s = store.session(for: get("/")).session
        clock.advance(59)
        #expect(store.existing(for: get("/", cookie: "nt_session=\(s.id)"))?.session === s)
        clock.advance(61)
        #expect(store.existing(for: get("/", cookie: "nt_session=\(s.id)"))?.session == nil)
    }

    /// Two loops serve one session: the request whose clock was read first may reach the
    /// session after the other has touched it, at a later second. That must not trap (it did:
    /// an unsigned `now - lastUsed` overflowed, and the server died under a two-loop load).
    @Test func aSessionTouchedAtALaterSecondByAnotherLoopStaysUsable() {
        let clock = FakeClock()
        let store = SessionStore(maxSessions: 2, clock: clock.read)
        let s = store.session(for: get("/")).session
        clock.advance(1)
        #expect(store.existing(for: get("/", cookie: "nt_session=\(s.id)"))?.session === s)
        clock.now.store(1000, ordering: .relaxed)  // the other loop's earlier reading
        #expect(store.existing(for: get("/", cookie: "nt_session=\(s.id)"))?.session === s)
        // Eviction at the cap compares the same times.
        _ = store.session(for: get("/"))
        _ = store.session(for: get("/"))
        #expect(store.count <= 2)
    }

    @Test func leastRecentlyUsedIsEvictedAtTheCap() {
        let clock = FakeClock()
        let store = SessionStore(maxSessions: 10, clock: clock.read)
        var ids: [String] = []
        for _ in 0..<10 {
            ids.append(store.session(for: get("/")).session.id)
            clock.advance(1)
        }
        _ = store.existing(for: get("/", cookie: "nt_session=\(ids[0])"))  // the oldest, used again
        clock.advance(1)
        _ = store.session(for: get("/"))
        #expect(store.count <= 10)
        #expect(store.existing(for: get("/", cookie: "nt_session=\(ids[0])")) != nil)
        #expect(store.existing(for: get("/", cookie: "nt_session=\(ids[1])")) == nil, "the least recently used went")
    }
}

@Suite struct ActionTests {
    @Test func formPostRedirectsAndRunsTheClosure() throws {
        let (app, counter) = counterApp()
        let page = app.respond(to: get("/counter"))
        let cookie = try #require(cookiePair(page))
        #expect(header(page, "Content-Security-Policy")?.contains("script-src 'self'") == true)
        let body = page.body.string
        let action = try #require(actionPath(in: body))
        #expect(body.contains("name=\"_s\""), "the first page carries the id: the browser may refuse the cookie")
        #expect(!app.respond(to: get("/counter", cookie: cookie)).body.string.contains("name=\"_s\""), "not once the cookie came back")
        let r = app.respond(to: post(action, cookie: cookie))
        #expect(r.status == .seeOther)
        #expect(header(r, "Location") == "/counter")
        #expect(counter.withLock { $0 } == 1)
        let js = app.respond(to: post(action, cookie: cookie, headers: [("X-Needletail", "1")]))
        #expect(js.status == .noContent)
        #expect(counter.withLock { $0 } == 2)
    }

    @Test func aBrowserWithoutCookiesKeepsItsSessionThroughFormsRedirectsAndPolls() throws {
        let (app, counter) = counterApp()
        let first = app.respond(to: get("/counter"))
        let id = try #require(cookiePair(first)).replacingOccurrences(of: "nt_session=", with: "")
        #expect(first.body.string.contains("name=\"_s\" value=\"\(id)\""))
        #expect(first.body.string.contains("data-nt-s=\"\(id)\""), "for the runtime's polls")
        // The cookie does not come back: the form's field carries the session, and the
        // redirect keeps it.
        let action = try #require(actionPath(in: first.body.string))
        let r = app.respond(to: post(action, form: "_s=\(id)"))
        #expect(r.status == .seeOther && header(r, "Location") == "/counter?_s=\(id)")
        #expect(counter.withLock { $0 } == 1)
        let again = app.respond(to: get("/counter", query: "_s=\(id)"))
        #expect(cookiePair(again) == nil, "the same session, not a new one")
        let body = again.body.string
        #expect(body.contains("name=\"_s\" value=\"\(id)\"") && body.contains("data-nt-s=\"\(id)\""))
        // The view's address is kept without the field: redirects add the current one once.
        let r2 = app.respond(to: post(try #require(actionPath(in: body)), form: "_s=\(id)"))
        #expect(header(r2, "Location") == "/counter?_s=\(id)")
        let view = try #require(body.range(of: "data-nt-view=\"").map { String(body[$0.upperBound...].prefix { $0 != "\"" }) })
        let poll = app.respond(to: get("/_nt/poll", query: "v=\(view)&c=counter%7C0&_s=\(id)"))
        #expect(poll.status == .ok && poll.body.string.contains("<p>2</p>"))
        // Another site's link or form cannot put a visitor in a session it made (fixation):
        // browsers say where a request came from, and the fields count only from this site.
        let crossSite = [("Sec-Fetch-Site", "cross-site")]
        let lured = app.respond(to: get("/counter", query: "_s=\(id)", headers: crossSite))
        #expect(cookiePair(lured) != nil && cookiePair(lured) != "nt_session=\(id)", "a new session instead")
        #expect(app.respond(to: post(try #require(actionPath(in: body)), form: "_s=\(id)", headers: crossSite)).status == .gone)
        #expect(counter.withLock { $0 } == 2)
        for site in ["same-origin", "none"] {
            #expect(cookiePair(app.respond(to: get("/counter", query: "_s=\(id)", headers: [("Sec-Fetch-Site", site)]))) == nil)
        }
        // A view reached with other fields keeps them, and the redirect adds the id once.
        let withFields = app.respond(to: get("/counter", query: "b=1&_s=\(id)&x_s=2")).body.string
        let r3 = app.respond(to: post(try #require(actionPath(in: withFields)), form: "_s=\(id)"))
        #expect(header(r3, "Location") == "/counter?b=1&x_s=2&_s=\(id)")
        // With the cookie back, nothing carries the id any more.
        let withCookie = app.respond(to: get("/counter", cookie: "nt_session=\(id)")).body.string
        // (Not a bare "_s": a random view or action id may hold those two characters.)
        #expect(!withCookie.contains("name=\"_s\"") && !withCookie.contains("_s=") && !withCookie.contains("data-nt-s"), "\(withCookie)")
    }

    @Test func pageURLsCarryTheSessionOnlyForBrowsersThatRefuseTheCookie() throws {
        var app = LiveApp()
        app.page("/links") { page in .html(P(page.url("/a?b=1#top"))) }
        let first = app.respond(to: get("/links"))
        #expect(first.body.string.contains("/a?b=1#top"), "a new session: the browser may yet take the cookie")
        let id = try #require(cookiePair(first)).replacingOccurrences(of: "nt_session=", with: "")
        #expect(app.respond(to: get("/links", cookie: "nt_session=\(id)")).body.string.contains("/a?b=1#top"))
        #expect(app.respond(to: get("/links", query: "_s=\(id)")).body.string.contains("/a?b=1&amp;_s=\(id)#top"), "before the fragment")
    }

    @Test func actionsAreBoundToTheirSession() throws {
        let (app, counter) = counterApp()
        let page = app.respond(to: get("/counter"))
        let action = try #require(actionPath(in: page.body.string))
        let other = try #require(cookiePair(app.respond(to: get("/counter"))))
        let r = app.respond(to: post(action, cookie: other))
        #expect(r.status == .gone)
        #expect(r.body.string.contains("expired"))
        #expect(app.respond(to: post(action)).status == .gone, "no session at all")
        #expect(app.respond(to: post("/_nt/a/nonsense", cookie: other)).status == .gone)
        #expect(counter.withLock { $0 } == 0)
        #expect(app.respond(to: get(action)).status == .methodNotAllowed)
    }

    @Test func theLastEightViewsKeepTheirActions() throws {
        let (app, counter) = counterApp()
        let first = app.respond(to: get("/counter"))
        let cookie = try #require(cookiePair(first))
        var actions = [try #require(actionPath(in: first.body.string))]
        for _ in 0..<8 { actions.append(try #require(actionPath(in: app.respond(to: get("/counter", cookie: cookie)).body.string))) }
        #expect(app.respond(to: post(actions[0], cookie: cookie)).status == .gone, "nine views ago")
        #expect(app.respond(to: post(actions[1], cookie: cookie)).status == .seeOther, "eight views ago: the back button works")
        #expect(app.respond(to: post(actions[8], cookie: cookie)).status == .seeOther)
        #expect(counter.withLock { $0 } == 2)
    }

    @Test func actionsPerSessionAreCapped() throws {
        let sessions = SessionStore(maxActions: 20)
        var app = LiveApp(core: LiveAppCore(sessions: sessions))
        app.page("/many") { page in
            .html(Div { ForEach(0..<15) { _ in page.actionButton("x") { _ in } } })
        }
        let first = app.respond(to: get("/many"))
        let cookie = try #require(cookiePair(first))
        let old = try #require(actionPath(in: first.body.string))
        _ = app.respond(to: get("/many", cookie: cookie))
        #expect(app.respond(to: post(old, cookie: cookie)).status == .gone, "15 + 15 > 20: the oldest view's actions went")
    }
}

/// Captures what a streamed response writes.
final class CapturingSink: ResponseStreamSink, @unchecked Sendable {
    let written = Mutex<String>("")
    let done = Mutex(false)
    var finished: Bool { done.withLock { $0 } }
    func write(_ chunks: ChunksTransfer) { written.withLock { $0 += chunks.chunks.string } }
    func finish() { done.withLock { $0 = true } }
    var isCancelled: Bool { false }
}

@Suite struct ChannelTests {
    @Test func versionsAndImmediateAnswers() throws {
        let (app, counter) = counterApp()
        let page = app.respond(to: get("/counter"))
        let cookie = try #require(cookiePair(page))
        let body = page.body.string
        let view = try #require(body.range(of: "data-nt-view=\"").map { String(body[$0.upperBound...].prefix { $0 != "\"" }) })
        #expect(body.contains("data-nt-channels=\"counter|0\""))
        counter.withLock { $0 = 5 }
        app.channels.notify("counter")
        let r = app.respond(to: get("/_nt/poll", query: "v=\(view)&c=counter%7C0", cookie: cookie))
        #expect(r.status == .ok && r.body.stream == nil, "an old version is answered at once")
        #expect(
            r.body.string
                == "<template data-nt-op=\"replace\" data-nt-target=\"count\"><div id=\"count\" data-nt-live=\"\"><p>5</p></div></template><template data-nt-versions=\"counter|1\"></template>"
        )
        #expect(app.respond(to: get("/_nt/poll", query: "v=\(view)&c=counter%7Cx", cookie: cookie)).status == .badRequest)
        #expect(app.respond(to: get("/_nt/poll", query: "v=nope&c=counter%7C1", cookie: cookie)).status == .gone)
        // A channel the view does not show is refused, for polls and event streams alike (its
        // versions would tell the visitor when it changes); notified, it would answer at once.
        app.channels.notify("inbox:someone")
        for path in ["/_nt/poll", "/_nt/events"] {
            let r = app.respond(to: get(path, query: "v=\(view)&c=counter%7C1%3Binbox%3Asomeone%7C0", cookie: cookie))
            #expect(r.status == .badRequest && r.body.string.contains("no channel inbox:someone"))
        }
    }

    @Test func parkedPollIsAnsweredOnNotify() throws {
        let (app, counter) = counterApp()
        let page = app.respond(to: get("/counter"))
        let cookie = try #require(cookiePair(page))
        let body = page.body.string
        let view = try #require(body.range(of: "data-nt-view=\"").map { String(body[$0.upperBound...].prefix { $0 != "\"" }) })
        let r = app.respond(to: get("/_nt/poll", query: "v=\(view)&c=counter%7C0", cookie: cookie))
        let produce = try #require(r.body.stream, "a current version parks the poll")
        let sink = CapturingSink()
        produce(ResponseStream(sink: sink))
        #expect(app.channels.waiting == 1)
        #expect(!sink.finished)
        counter.withLock { $0 = 7 }
        app.channels.notify("counter")
        #expect(sink.finished)
        #expect(sink.written.withLock { $0 }.contains("<p>7</p>"))
        #expect(app.channels.waiting == 0)
        app.channels.notify("other")  // nobody waits on it: nothing happens
    }

    @Test func eventStreamSendsAtOnceAndOnEachChange() throws {
        let (app, counter) = counterApp()
        let page = app.respond(to: get("/counter"))
        let cookie = try #require(cookiePair(page))
        let body = page.body.string
        let view = try #require(body.range(of: "data-nt-view=\"").map { String(body[$0.upperBound...].prefix { $0 != "\"" }) })
        let r = app.respond(to: get("/_nt/events", query: "v=\(view)&c=counter%7C0", cookie: cookie))
        #expect(r.contentType == "text/event-stream")
        #expect(header(r, "X-Accel-Buffering") == "no")
        let sink = CapturingSink()
        let produce = try #require(r.body.stream)
        produce(ResponseStream(sink: sink))
        #expect(sink.written.withLock { $0 } == "data: <template data-nt-versions=\"counter|0\"></template>\n\n", "a first event at once")
        counter.withLock { $0 = 3 }
        app.channels.notify("counter")
        let text = sink.written.withLock { $0 }
        #expect(
            text.hasSuffix(
                "data: <template data-nt-op=\"replace\" data-nt-target=\"count\"><div id=\"count\" data-nt-live=\"\"><p>3</p></div></template><template data-nt-versions=\"counter|1\"></template>\n\n"
            ))
        #expect(!sink.finished, "the stream stays open")
        #expect(app.channels.waiting == 1, "and follows from the new version")
        app.channels.notify("counter")
        #expect(sink.written.withLock { $0 }.hasSuffix("counter|2\"></template>\n\n"))
    }

    @Test func aSubscriberIsHandedTheVersionsOfAllItsChannels() {
        let channels = Channels()
        channels.notify("b")
        channels.notify("b")
        let delivered = Mutex<[[UInt64]]>([])
        channels.wait(for: [ChannelVersion("a", 0), ChannelVersion("b", 2)], timeout: 25, isCancelled: { false }) { v in
            delivered.withLock { $0.append(v.map(\.version)) }
        }
        #expect(channels.waiting == 1)
        channels.notify("a")
        #expect(delivered.withLock { $0 } == [[1, 2]], "the notified channel's new version and the other's current one, in order")
        #expect(channels.waiting == 0, "and out of both channels' sets")
        channels.notify("b")
        #expect(delivered.withLock { $0 }.count == 1, "delivered once")
        channels.wait(for: [ChannelVersion("a", 0), ChannelVersion("b", 3)], timeout: 25, isCancelled: { false }) { v in
            delivered.withLock { $0.append(v.map(\.version)) }
        }
        #expect(delivered.withLock { $0 }.last == [1, 3], "an old version: delivered at once, with the current ones")
    }

    @Test func reRenderedRegionsKeepOnlyTheActionsOfTheirLastTwoRenders() throws {
        let ran = Counter()
        var app = LiveApp()
        let channels = app.channels
        app.page("/list") { page in
            .html(
                Div {
                    page.live("list", channels: ["list"]) { page in page.actionButton("remove") { _ in ran.withLock { $0 += 1 } } }
                    page.actionButton("outside") { _ in ran.withLock { $0 += 100 } }
                    page.liveStatus()
                })
        }
        let first = app.respond(to: get("/list"))
        let cookie = try #require(cookiePair(first))
        let body = first.body.string
        let view = try #require(body.range(of: "data-nt-view=\"").map { String(body[$0.upperBound...].prefix { $0 != "\"" }) })
        let actions = actionPaths(in: body)
        try #require(actions.count == 2)
        let (inRegion, outside) = (actions[0], actions[1])
        // Each update re-renders the region, which registers its button again.
        var rendered = [inRegion]
        for v in 0..<4 {
            channels.notify("list")
            let answer = app.respond(to: get("/_nt/poll", query: "v=\(view)&c=list%7C\(v)", cookie: cookie)).body.string
            rendered.append(try #require(actionPath(in: answer)))
        }
        // Renders 0...4: the last two keep their actions, older ones answer 410.
        for (n, action) in rendered.enumerated() {
            let status = app.respond(to: post(action, cookie: cookie)).status
            #expect(status == (n >= 3 ? .seeOther : .gone), "render \(n)")
        }
        #expect(ran.withLock { $0 } == 2)
        #expect(
            app.respond(to: post(outside, cookie: cookie)).status == .seeOther, "an action outside the region is not the region's to drop")
    }

    @Test func aRegionRendersAtTheVersionItsAnswerCarries() throws {
        var app = LiveApp()
        let channels = app.channels
        let bumpWhileRendering = Mutex(false)
        app.page("/v") { page in
            .html(
                Div {
                    page.live("v", channels: ["c"]) { page in
                        // A change landing during the render: the answer still says the version
                        // it was rendered at, so the client asks again and gets the change.
                        let bump = bumpWhileRendering.withLock { b in
                            defer { b = false }; return b
                        }
                        let _: Void = bump ? channels.notify("c") : ()
                        P { "at " + String(page.version("c")) }
                    }
                    page.liveStatus()
                })
        }
        let first = app.respond(to: get("/v"))
        let cookie = try #require(cookiePair(first))
        let body = first.body.string
        #expect(body.contains("<p>at 0</p>") && body.contains("data-nt-channels=\"c|0\""))
        let view = try #require(body.range(of: "data-nt-view=\"").map { String(body[$0.upperBound...].prefix { $0 != "\"" }) })
        channels.notify("c")
        channels.notify("c")
        bumpWhileRendering.withLock { $0 = true }
        let answer = app.respond(to: get("/_nt/poll", query: "v=\(view)&c=c%7C0", cookie: cookie)).body.string
        #expect(answer.contains("<p>at 2</p>") && answer.hasSuffix("<template data-nt-versions=\"c|2\"></template>"))
        #expect(channels.version("c") == 3)
        let again = app.respond(to: get("/_nt/poll", query: "v=\(view)&c=c%7C2", cookie: cookie)).body.string
        #expect(again.contains("<p>at 3</p>") && again.hasSuffix("c|3\"></template>"), "answered at once with the change")
    }

    @Test func aQuietEventStreamGetsHeartbeatsAndStillFollows() throws {
        let clock = FakeClock()
        let counter = Counter()
        var app = LiveApp(core: LiveAppCore(channels: Channels(clock: clock.read)))
        let channels = app.channels
        app.page("/counter") { page in
            .html(
                Div {
                    page.live("count", channels: ["counter"]) { _ in P { counter.withLock { $0 } } }; page.liveStatus()
                })
        }
        let page = app.respond(to: get("/counter"))
        let cookie = try #require(cookiePair(page))
        let body = page.body.string
        let view = try #require(body.range(of: "data-nt-view=\"").map { String(body[$0.upperBound...].prefix { $0 != "\"" }) })
        let sink = CapturingSink()
        let produce = try #require(app.respond(to: get("/_nt/events", query: "v=\(view)&c=counter%7C0", cookie: cookie)).body.stream)
        produce(ResponseStream(sink: sink))
        clock.advance(16)  // past the 15 s wait: the sweeper (once a second) ends it
        var waited = 0
        while !sink.written.withLock({ $0.hasSuffix(": heartbeat\n\n") }) && waited < 40 { usleep(100_000); waited += 1 }
        #expect(sink.written.withLock { $0 }.hasSuffix(": heartbeat\n\n"), "a comment line, so that proxies keep the stream")
        #expect(channels.waiting == 1, "and the stream waits again")
        counter.withLock { $0 = 9 }
        channels.notify("counter")
        #expect(sink.written.withLock { $0 }.hasSuffix("<p>9</p></div></template><template data-nt-versions=\"counter|1\"></template>\n\n"))
        #expect(!sink.finished)
    }

    @Test func parkedPollTimesOutWithNoChange() throws {
        let clock = FakeClock()
        let channels = Channels(clock: clock.read)
        let done = Counter()
        let delivered = Mutex<[UInt64]>([])
        channels.wait(for: [ChannelVersion("c", 0)], timeout: 25, isCancelled: { false }) { v in
            delivered.withLock { $0 = v.map(\.version) }
            done.withLock { $0 += 1 }
        }
        clock.advance(26)
        var waited = 0
        while done.withLock({ $0 }) == 0 && waited < 30 { usleep(100_000); waited += 1 }
        let count = done.withLock { $0 }
        #expect(count == 1, "the sweeper answers at the deadline")
        #expect(delivered.withLock { $0 } == [0], "with the versions, unchanged")
        #expect(channels.waiting == 0)
    }
}

@Suite struct RuntimeTests {
    @Test func runtimeIsValidJavaScriptAndSmall() throws {
        let path = NSTemporaryDirectory() + "nt-runtime-\(getpid()).js"
        try ClientRuntime.source.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let check = try run("env", ["node", "--check", path])
        #expect(check.status == 0, "\(check.output)")
        let out = try run("/bin/sh", ["-c", "gzip -9 -c '\(path)' | wc -c"]).output
        let size = Int(out.trimmingCharacters(in: .whitespacesAndNewlines)) ?? .max
        #expect(size <= 2048, "runtime is \(size) bytes gzipped")
        print("client runtime: \(ClientRuntime.source.utf8.count) bytes, \(size) gzipped")
    }
}

@Suite struct PageTests {
    enum Sort: String, CaseIterable, ParameterValue { case newest, oldest }

    struct Oops: Error {}

    @Test func typedParametersWithDefaultsFromQueryFormAndCookies() throws {
        var app = LiveApp()
        app.page("/list") { page in
            let n = try page.request.parameter("n", default: 10)
            let sort = try page.request.parameter("sort", default: Sort.newest)
            let compact = try page.request.parameter("compact", default: false)
            return .text("n=\(n) sort=\(sort.rawValue) compact=\(compact)")
        }
        app.page("/fail") { _ in throw Oops() }
        #expect(app.respond(to: get("/list")).body.string == "n=10 sort=newest compact=false")
        #expect(app.respond(to: get("/list", query: "n=3&sort=oldest&compact=yes")).body.string == "n=3 sort=oldest compact=true")
        #expect(app.respond(to: get("/list", cookie: "n=7")).body.string.hasPrefix("n=7 "), "from a cookie")
        let bad = app.respond(to: get("/list", query: "n=ten"))
        #expect(bad.status == .badRequest)
        #expect(bad.body.string.contains("The parameter n must be an integer (it was &quot;ten&quot;)."))
        let badSort = app.respond(to: get("/list", query: "sort=random"))
        #expect(badSort.body.string.contains("one of newest, oldest"))
        let fail = app.respond(to: get("/fail"))
        #expect(fail.status == .internalServerError)
        #expect(!fail.body.string.contains("Oops"), "no internals in the page")
    }

    @Test func queryParametersComeFromTheQueryAlone() {
        var app = LiveApp()
        app.page("/opt") { page in
            let n = try page.request.queryParameter("n", default: 10)
            let sort = try page.request.queryParameter("sort", default: Sort.newest)
            return .text("n=\(n) sort=\(sort.rawValue)")
        }
        #expect(app.respond(to: get("/opt")).body.string == "n=10 sort=newest")
        #expect(app.respond(to: get("/opt", query: "sort=oldest&n=3")).body.string == "n=3 sort=oldest")
        #expect(app.respond(to: get("/opt", cookie: "n=7")).body.string == "n=10 sort=newest", "a cookie is not a URL option")
        let bad = app.respond(to: get("/opt", query: "n=ten"))
        #expect(bad.status == .badRequest)
        #expect(bad.body.string.contains("The parameter n must be an integer (it was &quot;ten&quot;)."))
    }

    @Test func virtualHostsPickBySiteNameWithAliasesAndDefault() {
        var a = Router(), b = Router(), d = Router()
        a.get("/") { _ in .text("site a") }
        b.get("/") { _ in .text("site b") }
        d.get("/") { _ in .text("default") }
        var hosts = VirtualHosts(default: d)
        hosts.add(["a.example", "www.a.example"], a)
        hosts.add(["b.example"], b)
        func site(_ host: String?) -> String {
            hosts.respond(to: Request(method: .get, path: "/", host: host)).body.string
        }
        #expect(site("a.example") == "site a")
        #expect(site("WWW.A.example:8080") == "site a")
        #expect(site("b.example.") == "site b")
        #expect(site("c.example") == "default")
        #expect(site(nil) == "default")
        #expect(site("[::1]:80") == "default")
    }
}

@Suite struct LiveDocumentTests {
    @Test func rendersWhatTheDSLWouldWithTheRuntimeAndStatus() {
        var app = LiveApp()
        let captured = Mutex<(String, String)?>(nil)
        app.page("/doc") { page in
            let document = page.document(title: "A <title>", lang: "en-GB", transport: .poll) {
                Link().rel("stylesheet").href("/s.css")
            } body: {
                page.live("r", channels: ["c"]) { _ in P("region") }
            }
            let dsl = Html {
                Head {
                    Meta().charset("utf-8"); Title("A <title>"); Link().rel("stylesheet").href("/s.css"); page.runtimeScript
                }
                Body {
                    page.live("r", channels: ["c"]) { _ in P("region") }; page.liveStatus(transport: .poll)
                }
            }.lang("en-GB")
            captured.withLock { $0 = (document.render().string, dsl.render().string) }
            return .html(document)
        }
        let page = TestBrowser(app).get("/doc")
        let (document, dsl) = captured.withLock { $0 }!
        #expect(document == dsl)
        #expect(page.text.contains("<script src=\"/_nt/runtime.js?v=") && page.text.contains("data-nt-transport=\"poll\""), "\(page.text)")
        #expect(page.text.hasSuffix("aria-live=\"polite\"></div></body></html>"))
    }
}

@Suite struct AsyncLiveTests {
    /// An async page and async actions answer as their synchronous counterparts do: the redirect
    /// (or 204) only once the action's awaits are done, 400 for a wrong parameter, 500 for an error.
    @Test func asyncPagesAndActions() throws {
        let counter = Counter()
        var app = LiveApp()
        app.page("/async") { page async throws -> Response in
            try await Waiting.sleep(milliseconds: 1)
            return .html(page.document(title: "Async") {
                page.live("count", channels: ["c"]) { _ in P { counter.withLock { $0 } } }
                page.actionForm({ action async throws in
                    try await Waiting.sleep(milliseconds: 1)
                    let by = try action.request.parameter("by", default: 1)
                    counter.withLock { $0 += by }
                    action.notify("c")
                }) { Button("+") }
                page.actionButton("fail") { _ async throws in
                    try await Waiting.sleep(milliseconds: 1)
                    struct Full: Error {}
                    throw Full()
                }
            })
        }
        let browser = TestBrowser(app)
        let page = browser.get("/async")
        #expect(page.status == .ok && page.text.contains("<p>0</p>"))
        let actions = page.actionPaths
        #expect(actions.count == 2)
        let done = browser.post(actions[0], form: "by=2")
        #expect(done.status == .seeOther)
        #expect(counter.withLock { $0 } == 2, "the action had run when its redirect came")
        let bad = browser.post(actions[0], form: "by=two")
        #expect(bad.status == .badRequest && bad.text.contains("The parameter by must be an integer"))
        let failed = browser.post(actions[1], headers: [("X-Needletail", "1")])
        #expect(failed.status == .internalServerError && failed.text.contains("nothing was changed"))
        #expect(browser.get("/async").text.contains("<p>2</p>"))
    }
}
