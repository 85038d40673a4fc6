import NeedletailBytes
import NeedletailHTML
import Synchronization

/// One rendered page of one session: the actions and live regions it registered. Kept for the
/// session's last `viewsKept` pages, so that the back button finds working forms.
public final class LiveView: Sendable {
    /// Random id, carried by the page (`data-nt-view`) and by its polls.
    public let id: String
    /// Where a browser without JavaScript goes back to after an action (POST, redirect, GET).
    public let path: String
    let state = Mutex(ViewState())

    struct ViewState {
        var actions: [String: Action] = [:]
        var regions: [Region] = []
    }

    struct Action {
        let run: @Sendable (Request) -> Void
    }

    struct Region {
        let id: String
        let channels: [String]
        let render: @Sendable (Page) -> Chunks
    }

    init(path: String) {
        id = randomToken()
        self.path = path
    }

    var actionCount: Int { state.withLock { $0.actions.count } }
}

/// What a page is built with: the request, the session, the view being rendered, and the live
/// app's channels. `actionForm`, `actionButton` and `live` register closures on the view.
public final class Page: @unchecked Sendable {
    public let request: Request
    public let session: Session
    public let view: LiveView
    public let app: LiveAppCore
    // Built on one thread at a time (the loop rendering the page or the poll); the lock only
    // keeps Swift's checker and a careless app honest.
    let collected = Mutex<[(String, UInt64)]>([])

    init(request: Request, session: Session, view: LiveView, app: LiveAppCore) {
        self.request = request
        self.session = session
        self.view = view
        self.app = app
    }

    /// Whether forms must carry the session id (the browser sent no session cookie).
    var needsSessionField: Bool { request.cookie(app.sessions.cookieName) != session.id }

    func register(_ run: @escaping @Sendable (Request) -> Void) -> String {
        let id = randomToken()
        view.state.withLock { $0.actions[id] = LiveView.Action(run: run) }
        app.trimActions(of: session)
        return id
    }

    /// A form whose submission runs `handler` on the server (with the request: `form["field"]`).
    /// It posts to an unguessable address bound to this session, which is its CSRF protection.
    /// Without JavaScript it is an ordinary POST answered by a redirect back to the page; with
    /// the runtime it is sent in the background and the page updates through its live regions.
    public func actionForm<Content: FlowContent & FormFree>(
        _ handler: @escaping @Sendable (Request) -> Void,
        @HTMLBuilder content: () -> Content
    ) -> Form<HTMLPair<Content, SessionField>> {
        let id = register(handler)
        let field = SessionField(id: needsSessionField ? session.id : nil)
        return Form { content(); field }.method(.post).action("/_nt/a/" + id).data("nt", "form")
    }

    /// A one-button form that runs `handler`: the action link of the framework (a POST, so that
    /// no prefetcher or crawler triggers it).
    public func actionButton(_ label: String, class className: String = "nt-link", _ handler: @escaping @Sendable (Request) -> Void)
        -> Form<HTMLPair<Button<String>, SessionField>> {
        actionForm(handler) { Button(label).type(.submit).class(className) }
    }

    /// A region that is rendered again and sent to every open viewer when one of `channels` is
    /// notified. `content` is called now, and again for each update (with the viewer's page).
    public func live<Content: FlowContent & SendableMetatype>(_ id: String, channels: [String],
                                          @HTMLBuilder content: @escaping @Sendable (Page) -> Content) -> LiveRegion<Content> {
        // Versions first, then the content: an update landing in between is sent again, never lost.
        let versions = channels.map { ($0, app.channels.version($0)) }
        collected.withLock { c in for v in versions where !c.contains(where: { $0.0 == v.0 }) { c.append(v) } }
        let render: @Sendable (Page) -> Chunks = { page in LiveRegion(id: id, content: content(page)).render() }
        view.state.withLock { $0.regions.append(LiveView.Region(id: id, channels: channels, render: render)) }
        return LiveRegion(id: id, content: content(self))
    }

    /// How the runtime follows channels: server-sent events (falling back to long-polls when
    /// they do not get through) or long-polls only.
    public enum Transport: String, Sendable, CaseIterable, ParameterValue { case events, poll }

    /// The runtime's anchor: a status element carrying the view id and the channel versions of
    /// the live regions built so far. Put it at the end of `body`.
    public func liveStatus(transport: Transport = .events) -> some FlowContent {
        let versions = collected.withLock { $0 }.map { "\($0.0)|\($0.1)" }.joined(separator: ";")
        return Div().id("nt-status").data("nt-view", view.id).data("nt-channels", versions)
            .data("nt-transport", transport.rawValue).aria("live", "polite")
    }

    /// The runtime's script tag (a cacheable file; works under `script-src 'self'`).
    public var runtimeScript: some MetadataContent {
        Script().src(LiveAppCore.runtimePath + "?v=" + LiveAppCore.runtime.version).defer()
    }
}

/// A hidden `_s` field with the session id, only when the browser did not send the cookie.
public struct SessionField: FlowContent, PhrasingContent, NonInteractive, FormFree {
    let id: String?
    public func render(into out: inout HTMLOutput) {
        if let id { Input().type(.hidden).name("_s").value(id).render(into: &out) }
    }
}

/// `<div id=... data-nt-live>`: a live region (see `Page.live`).
public struct LiveRegion<Content: FlowContent>: FlowContent {
    let id: String
    let content: Content
    public func render(into out: inout HTMLOutput) {
        Div { content }.id(id).data("nt-live", "").render(into: &out)
    }
}
extension LiveRegion: NonInteractive where Content: NonInteractive {}
extension LiveRegion: FormFree where Content: FormFree {}
