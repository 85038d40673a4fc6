import NeedletailPOSIX
import NeedletailHTTP
import Glibc
import NeedletailBytes
import NeedletailHTML
import Synchronization

/// The shared state of a live application: sessions, channels, and the framework's own
/// endpoints under `/_nt/` (actions, polls, the client runtime).
public final class LiveAppCore: Sendable {
    public let sessions: SessionStore
    public let channels: Channels
    /// How long a poll waits for a change before answering "nothing new" (seconds).
    public let pollTimeout: UInt64

    /// Where the client runtime is served.
    public static let runtimePath = "/_nt/runtime.js"

    /// Headers of every live page: a Content-Security-Policy under which the runtime works
    /// (scripts only from this origin, no inline script), no MIME sniffing, no full referrer to
    /// other sites, and no caching of pages that carry per-session action ids.
    public static let pageHeaders: [(name: String, value: String)] = [
        (
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'self'"
        ),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "same-origin"),
        ("Cache-Control", "no-store"),
    ]
    /// `pageHeaders`, checked and encoded once.
    static let pageFields = FixedFields(pageHeaders)

    /// Where errors thrown by page builders are reported (the client only sees a 500 page).
    public let onError: @Sendable (String) -> Void
    /// Development mode: the last build's errors at the top of every live page.
    public let development: DevelopmentBuild?

    public init(
        sessions: SessionStore = SessionStore(), channels: Channels = Channels(), pollTimeout: UInt64 = 25,
        development: DevelopmentBuild? = nil,
        onError: @escaping @Sendable (String) -> Void = { reportToStandardError("needletail: " + $0) }
    ) {
        self.sessions = sessions
        self.channels = channels
        self.pollTimeout = pollTimeout
        self.onError = onError
        self.development = development
        development?.start(channels)
    }

    /// Builds a page for `request` with `build`, adding the session cookie when the session is
    /// new, the page headers, and keeping the view for later actions and polls.
    public func page(for request: Request, _ build: (Page) throws -> Response) -> Response {
        render(beginPage(request), build)
    }

    /// The same where sessions have a backing (several backends): the session may have to be
    /// loaded, or saved before its cookie goes out, so the page waits for that first.
    public func page(restoring request: Request, _ build: (Page) throws -> Response) async -> Response {
        render(await beginPage(restoring: request), build)
    }

    /// Builds `page` (a builder's error becomes its error page), then `finishPage`.
    func render(_ page: Page, _ build: (Page) throws -> Response) -> Response {
        // The answer is moved, not copied, on its way out: a copy of a response is a retain of
        // each of its parts (docs/PERFORMANCE.md, "Response copies").
        var response: Response
        do {
            response = try build(page)
        } catch {
            response = pageFailed(page, error)
        }
        finishPage(page, &response)
        return response
    }

    /// The same for a page that awaits its data before it renders.
    public func page(for request: Request, _ build: AsyncPage) async throws -> Response {
        let page = sessions.backing == nil ? beginPage(request) : await beginPage(restoring: request)
        var response: Response
        do {
            response = try await build(page)
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            response = pageFailed(page, error)
        }
        finishPage(page, &response)
        return response
    }

    /// The session and a new view for a page about to be built.
    func beginPage(_ request: Request) -> Page {
        let (session, source) = sessions.session(for: request)
        return makePage(request, session, source)
    }

    /// `beginPage` with the session from the backing when this process does not have it.
    func beginPage(restoring request: Request) async -> Page {
        let (session, source) = await sessions.session(for: request, onError: onError)
        return makePage(request, session, source)
    }

    func makePage(_ request: Request, _ session: Session, _ source: SessionSource) -> Page {
        let view = LiveView(path: request.query["_s"] == nil ? request.target : Page.removingSessionField(request.target))
        return Page(request: request, session: session, source: source, view: view, app: self)
    }

    /// A page builder's error: a 400 naming a wrong parameter, else a 500 (details logged).
    func pageFailed(_ page: Page, _ error: any Error) -> Response {
        if let e = error as? ParameterError { return Router.errorPage(.badRequest, detail: e.description) }
        // The details go to the log, never to the client.
        onError("page \(page.request.path) failed: \(error)")
        return Router.errorPage(.internalServerError, detail: "Something went wrong on our side; it has been logged.")
    }

    /// Keeps the view, then the page headers and the cookie of a new session.
    func finishPage(_ page: Page, _ response: inout Response) {
        let session = page.session
        session.state.withLock { st in
            st.views.append(page.view)
            if st.views.count > sessions.viewsKept { st.views.removeFirst(st.views.count - sessions.viewsKept) }
        }
        trimActions(of: session)
        if response.fixedFields == nil {
            response.fixedFields = LiveAppCore.pageFields
        } else {
            response.headers += LiveAppCore.pageHeaders
        }
        if page.source == .new { response.addHeader("Set-Cookie", sessions.cookie(for: session, request: page.request)) }
    }

    /// Keeps at most `maxActions` actions per session, dropping those of the oldest views first.
    /// Run once per render (a page, a poll's or an event's answer), not per registered action.
    func trimActions(of session: Session) {
        let views = session.state.withLock { $0.views }
        var total = views.reduce(0) { $0 + $1.actionCount }
        // Oldest views first; the newest keeps its actions whatever their number (the app, not
        // the client, decides how many one page has), or its own forms would be dead on arrival.
        for v in views.dropLast() where total > sessions.maxActions {
            total -= v.dropAllActions()
        }
    }

    /// The framework's endpoints (an async action's answer is `.pending`); `nil` for other paths.
    public func respondToInternal(_ request: Request) -> Response? {
        LiveAppCore.isInternal(request) ? internalResponse(request) : nil
    }

    /// Whether the request is for the framework's own paths (`/_nt/…`). Checked on the raw
    /// bytes: most requests are not ours, and `path` makes a string.
    @inline(__always)
    static func isInternal(_ request: Request) -> Bool {
        request.withPathBytes { p in
            p.count >= 5 && p[0] == UInt8(ascii: "/") && p[1] == UInt8(ascii: "_") && p[2] == UInt8(ascii: "n")
                && p[3] == UInt8(ascii: "t") && p[4] == UInt8(ascii: "/")
        }
    }

    /// The answer to a request for one of the framework's own paths (`isInternal`).
    func internalResponse(_ request: Request) -> Response {
        let path = request.path
        if path == LiveAppCore.runtimePath { return (runtimeResponse(request)) }
        if path == "/_nt/poll" { return (poll(request)) }
        if path == "/_nt/events" { return (events(request)) }
        if path.hasPrefix("/_nt/a/") {
            guard request.method == .post else {
                var r = Router.errorPage(.methodNotAllowed, detail: "Actions are sent with POST.")
                r.addHeader("Allow", "POST")
                return (r)
            }
            return action(String(path.dropFirst(7)), request)
        }
        return (Router.errorPage(.notFound, detail: "No page at this address."))
    }

    func view(_ id: String, in session: Session) -> LiveView? {
        session.state.withLock { $0.views.first { $0.id == id } }
    }

    func action(_ id: String, _ request: Request) -> Response {
        guard let (session, source) = sessions.existing(for: request),
            let (view, action) = session.state.withLock({ st -> (LiveView, LiveView.Action)? in
                for v in st.views.reversed() {
                    if let a = v.action(id) { return (v, a) }
                }
                return nil
            })
        else {
            return (Router.errorPage(
                .gone, detail: "This form has expired (the page is too old, or the session ended). Reload the page and try again."))
        }
        let context = ActionContext(request: request, session: session, channels: channels)
        switch action.run {
        case .sync(let run):
            return (actionAnswer(view: view, session: session, source: source, request: request) { try run(context) })
        case .async(let run):
            return .pending(PendingReply(request: request) { request in
                do {
                    try await run(context)
                } catch let e as ParameterError {
                    return Router.errorPage(.badRequest, detail: e.description)
                } catch is CancellationError {
                    throw CancellationError()
                } catch {
                    return self.actionFailed(view: view, error: error)
                }
                return self.actionDone(view: view, session: session, source: source, request: request)
            })
        }
    }

    /// What a synchronous action's run becomes: the redirect (or 204), or its error's page.
    func actionAnswer(view: LiveView, session: Session, source: SessionSource, request: Request, _ run: () throws -> Void) -> Response {
        do {
            try run()
        } catch let e as ParameterError {
            return Router.errorPage(.badRequest, detail: e.description)
        } catch {
            return actionFailed(view: view, error: error)
        }
        return actionDone(view: view, session: session, source: source, request: request)
    }

    /// A failed action: logged, and a 500 that says nothing was changed.
    func actionFailed(view: LiveView, error: any Error) -> Response {
        onError("action on \(view.path) failed: \(error)")
        return Router.errorPage(.internalServerError, detail: "This could not be done, and nothing was changed. The error has been logged.")
    }

    /// A done action: 204 for the runtime; for a plain form the redirect back to the page (a
    /// browser without the cookie keeps its session through it).
    func actionDone(view: LiveView, session: Session, source: SessionSource, request: Request) -> Response {
        if request.headers["x-needletail"] != nil { return Response(status: .noContent) }
        return .redirect(to: Page.url(view.path, session: session, source: source))
    }

    /// The page and channel versions a poll or event stream asks about, or the error answer.
    func subscription(_ request: Request) -> Result<(Page, ChannelVersions), ResponseError> {
        guard let (session, source) = sessions.existing(for: request), let viewID = request.query["v"],
            let view = view(viewID, in: session)
        else {
            return .failure(ResponseError(Router.errorPage(.gone, detail: "This page is no longer live; reload it.")))
        }
        guard let parsed = ChannelVersions(parsing: request.query["c"] ?? "") else {
            return .failure(
                ResponseError(Router.errorPage(.badRequest, detail: "The parameter c must be name|version pairs separated by ';'.")))
        }
        // Only the channels the view shows: another channel's version would tell this visitor
        // when it changes (a private one, say "inbox:" + someone else's name).
        let foreign = view.state.withLock { st in
            parsed.first { c in !st.regions.contains { $0.channels.contains(c.channel) } }
        }
        if let foreign {
            return .failure(ResponseError(Router.errorPage(.badRequest, detail: "This page shows no channel \(foreign.channel.name).")))
        }
        return .success((Page(request: request, session: session, source: source, view: view, app: self), parsed))
    }

    /// `GET /_nt/poll?v=VIEW&c=name|version;...`: answered at once when a version is old,
    /// else parked until a change or `pollTimeout`.
    func poll(_ request: Request) -> Response {
        let page: Page, known: ChannelVersions
        switch subscription(request) {
        case .failure(let e): return e.response
        case .success(let s): (page, known) = s
        }
        let current = channels.current(known)
        if known.isEmpty || known.differs(from: current) {
            return .html(answer(page, known, current))
        }
        return .streaming(contentType: Response.htmlType, headers: [("Cache-Control", "no-store")]) { [channels, pollTimeout] stream in
            channels.wait(
                for: known, timeout: pollTimeout, subscriber: LiveSubscription(.poll, core: self, page: page, known: known, stream: stream))
        }
    }

    /// `GET /_nt/events?v=VIEW&c=...`: server-sent events. The first event comes at once (the
    /// runtime falls back to long-polls if it does not arrive: a buffering proxy); then one per
    /// change, and a comment line every 15 s so that proxies and the browser keep the stream.
    func events(_ request: Request) -> Response {
        let page: Page, known: ChannelVersions
        switch subscription(request) {
        case .failure(let e): return e.response
        case .success(let s): (page, known) = s
        }
        return .streaming(contentType: "text/event-stream", headers: [("Cache-Control", "no-store"), ("X-Accel-Buffering", "no")]) {
            stream in
            self.send(page, known, self.channels.current(known), to: stream)
        }
    }

    /// Sends the update from `known` to `current`, then follows the channels from there.
    func send(_ page: Page, _ known: ChannelVersions, _ current: ChannelVersions, to stream: ResponseStream) {
        guard !stream.isCancelled else { return }
        stream.write(Self.event(answer(page, known, current).string))
        follow(page, current, stream)
    }

    /// Waits for a change of `known`: sends it, or a heartbeat comment at each timeout.
    func follow(_ page: Page, _ known: ChannelVersions, _ stream: ResponseStream) {
        channels.wait(
            for: known, timeout: LiveAppCore.heartbeat,
            subscriber: LiveSubscription(.events, core: self, page: page, known: known, stream: stream))
    }

    /// Seconds between comment lines on a quiet event stream.
    static let heartbeat: UInt64 = 15

    /// `text` as one SSE event: each line prefixed with `data: `.
    static func event(_ text: String) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false).map { "data: " + $0 }.joined(separator: "\n") + "\n\n"
    }

    /// The update for a viewer that has `known` versions when the channels are at `current`
    /// (read before rendering, as for pages: a change during the render is sent again): the
    /// regions showing a changed channel, rendered again, as `<template data-nt-op="replace"
    /// data-nt-target=ID>` operations, then the new versions.
    func answer(_ page: Page, _ known: ChannelVersions, _ current: ChannelVersions) -> Chunks {
        // (A page has a few channels and regions: arrays, not sets.)
        page.answering(at: current)
        func changed(_ channel: Channel) -> Bool { known.changed(channel, in: current) }
        let regions = page.view.state.withLock { $0.regions }
        let actionsBefore = page.registered.load(ordering: .relaxed)
        var out = HTMLOutput()
        // The wrapper's tags and attribute names are constants, written directly: on every
        // answer (docs/PERFORMANCE.md).
        for r in regions where r.channels.contains(where: changed) {
            out.append("<template data-nt-op=\"replace\" data-nt-target=\"")
            out.appendAttributeValue(r.id)
            out.append("\">")
            let hadActions = r.hasActions.load(ordering: .relaxed)
            let n = r.renders.add(1, ordering: .relaxed).newValue
            page.rendering(r, render: n) { r.render(page, &out) }
            if hadActions { page.view.dropActions(of: r.id, before: n) }
            out.append("</template>")
        }
        out.append("<template data-nt-versions=\"")
        out.appendChannelVersions(current)
        out.append("\"></template>")
        // Re-rendered regions may have registered their actions again.
        if page.registered.load(ordering: .relaxed) != actionsBefore { trimActions(of: page.session) }
        return out.chunks
    }

    /// Ends every parked poll and event stream, and those that come later, so that their pages
    /// reconnect to the process that serves next (`UpgradeSettings.drain`); `resumeSubscriptions`
    /// undoes it.
    public func endSubscriptions() { channels.endAll() }

    /// Parks polls and streams again (the upgrade failed).
    public func resumeSubscriptions() { channels.resume() }

    static let runtime = StaticAsset(ClientRuntime.source, type: "text/javascript; charset=utf-8")

    func runtimeResponse(_ request: Request) -> Response { LiveAppCore.runtime.respond(to: request) }
}

/// An error answer carried through `Result`.
struct ResponseError: Error, @unchecked Sendable {
    let response: Response
    init(_ response: Response) { self.response = response }
}
