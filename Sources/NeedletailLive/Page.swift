import NeedletailPOSIX
import NeedletailBytes
import NeedletailHTML
import NeedletailHTTP
import Synchronization

/// What a page is built with: the request, the session, the view being rendered, and the live
/// app's channels. `actionForm`, `actionButton` and `live` register closures on the view.
public final class Page: @unchecked Sendable {
    public let request: Request
    public let session: Session
    public let view: LiveView
    public let app: LiveAppCore
    // Built on one thread at a time (the loop rendering the page, the thread answering a poll
    // or event); the lock only keeps Swift's checker and a careless app honest.
    /// The channel versions the page is based on.
    let collected = Mutex(ChannelVersions())
    /// The channels and versions of the answer being rendered with this page (a poll's or an
    /// event's): its channels are at `current`.
    let answered = Mutex<ChannelVersions?>(nil)
    /// Actions registered through this page (an answer that registered none needs no trim).
    let registered = Atomic<Int>(0)
    /// The live region being rendered and which render of it (actions registered now belong
    /// to it); nil outside regions.
    let renderContext = Mutex<(region: LiveView.Region, render: Int)?>(nil)

    /// Where the session's id came from: forms carry it unless it came in the cookie; links
    /// and redirects only once the browser is known to refuse the cookie (it came in a field).
    let source: SessionSource

    init(request: Request, session: Session, source: SessionSource, view: LiveView, app: LiveAppCore) {
        self.request = request
        self.session = session
        self.view = view
        self.app = app
        self.source = source
    }

    var needsSessionField: Bool { source != .cookie }

    /// `path` (a link on this site) as this visitor must follow it: with the session id added
    /// when the browser refuses the session cookie, so that the link keeps the session; else
    /// unchanged. (An id in a URL is seen by whoever sees the URL: it is added only for
    /// browsers that leave no other way.)
    public func url(_ path: String) -> String { Page.url(path, session: session, source: source) }

    /// `path` for a session whose id came from `source`: with the `_s` field (before a
    /// fragment) only when it came in one; what `url(_:)` and the redirect after an action give.
    static func url(_ path: String, session: Session, source: SessionSource) -> String {
        guard source == .field else { return path }
        let hash = path.firstIndex(of: "#") ?? path.endIndex
        let head = path[..<hash]
        return head + (head.contains("?") ? "&_s=" : "?_s=") + session.id + path[hash...]
    }

    /// `target` without its `_s` query fields (a view's path, where redirects go, is stored
    /// without it; the redirect adds the current one when needed). Asked only when the query
    /// has one (hot path, see docs/PERFORMANCE.md).
    static func removingSessionField(_ target: String) -> String {
        guard let q = target.firstIndex(of: "?") else { return target }
        let kept = target[target.index(after: q)...].split(whereSeparator: { $0 == "&" || $0 == ";" }).filter { !$0.hasPrefix("_s=") }
        return String(target[..<q]) + (kept.isEmpty ? "" : "?" + kept.joined(separator: "&"))
    }

    @usableFromInline
    func register(_ run: @escaping @Sendable (ActionContext) throws -> Void) -> String { register(.sync(run)) }

    @usableFromInline
    func register(_ run: @escaping AsyncAction) -> String { register(.async(run)) }

    func register(_ run: LiveView.Run) -> String {
        let id = randomID()
        let context = renderContext.withLock { $0 }
        context?.region.hasActions.store(true, ordering: .relaxed)
        view.add(action: id, LiveView.Action(run: run, region: context?.region.id, render: context?.render ?? 0))
        registered.add(1, ordering: .relaxed)
        return id
    }

    /// A form whose submission runs `handler` on the server (its context has the form's
    /// fields, `action.form["field"]`, the session, and `notify`).
    /// It posts to an unguessable address bound to this session, which is its CSRF protection.
    /// Without JavaScript it is an ordinary POST answered by a redirect back to the page; with
    /// the runtime it is sent in the background and the page updates through its live regions.
    /// If `handler` throws, the client gets an error page instead of the redirect (400 naming
    /// the parameter for a `ParameterError`, else 500 with the details in the log), so that a
    /// change that failed, e.g. a write to a full disk, is never reported as done.
    @inlinable
    public func actionForm<Content: FlowContent & FormFree>(
        _ handler: @escaping @Sendable (ActionContext) throws -> Void,
        @HTMLBuilder content: () -> Content
    ) -> Form<HTMLPair<Content, SessionField>> {
        let id = register(handler)
        let field = sessionField()
        return Form {
            content(); field
        }.method(.post).action("/_nt/a/" + id).data("nt", "form")
    }

    /// The same with an async handler: it may await (a durable write, a database) while its
    /// loop serves others: `page.actionForm({ action async throws in try await … }) { … }`.
    @inlinable
    public func actionForm<Content: FlowContent & FormFree>(
        _ handler: @escaping AsyncAction,
        @HTMLBuilder content: () -> Content
    ) -> Form<HTMLPair<Content, SessionField>> {
        let id = register(handler)
        let field = sessionField()
        return Form {
            content(); field
        }.method(.post).action("/_nt/a/" + id).data("nt", "form")
    }

    @usableFromInline
    func sessionField() -> SessionField { SessionField(id: needsSessionField ? session.id : nil) }

    /// A one-button form that runs `handler`: the action link of the framework (a POST, so that
    /// no prefetcher or crawler triggers it).
    public func actionButton(
        _ label: String, class className: String = "nt-link", _ handler: @escaping @Sendable (ActionContext) throws -> Void
    )
        -> Form<HTMLPair<Button<String>, SessionField>>
    {
        actionForm(handler) { Button(label).type(.submit).class(className) }
    }

    /// The same with an async handler.
    public func actionButton(_ label: String, class className: String = "nt-link", _ handler: @escaping AsyncAction)
        -> Form<HTMLPair<Button<String>, SessionField>>
    {
        actionForm(handler) { Button(label).type(.submit).class(className) }
    }

    /// A region that is rendered again and sent to every open viewer when one of `channels` is
    /// notified. `content` is called now, and again for each update (with the viewer's page).
    @inlinable
    public func live<Content: FlowContent & SendableMetatype>(
        _ id: String, channels: [Channel],
        @HTMLBuilder content: @escaping @Sendable (Page) -> Content
    ) -> LiveRegion<Content> {
        // Inlinable so that the content's type is known where the page is written (unspecialised
        // generics: metadata lookups; see docs/PERFORMANCE.md).
        recordVersions(of: channels)
        let region = addRegion(id, channels: channels) { page, out in LiveRegion(id: id, content: content(page)).render(into: &out) }
        return LiveRegion(id: id, content: rendering(region, render: nil) { content(self) })
    }

    /// Runs `body` (which renders `region`) with actions registered in it belonging to that
    /// render of the region (`nil`: the count the region has, 0 for a page; a region registered
    /// again inside one being re-rendered goes on from the count it had).
    @usableFromInline
    func rendering<T>(_ region: LiveView.Region, render: Int?, _ body: () -> T) -> T {
        let n = render ?? region.renders.load(ordering: .relaxed)
        let outer = renderContext.withLock { r in
            defer { r = (region, n) }
            return r
        }
        defer { renderContext.withLock { $0 = outer } }
        return body()
    }

    /// The version of `channel` this page is being rendered at: the one recorded for it before
    /// its live regions were rendered (for a page), or the one the update being rendered brings
    /// (for a poll's or an event's answer); else the channel's current version. A region that
    /// caches what it renders per version (`RenderCache`) should ask here.
    public func version(_ channel: Channel) -> UInt64 {
        if let v = answered.withLock({ $0?.version(of: channel) }) { return v }
        return collected.withLock { $0.version(of: channel) } ?? app.channels.version(channel)
    }

    /// An answer bringing the channels to `current` is about to be rendered with this page.
    func answering(at current: ChannelVersions) {
        answered.withLock { $0 = current }
    }

    /// Versions first, then the content: an update landing in between is sent again, never lost.
    @usableFromInline
    func recordVersions(of channels: [Channel]) {
        let versions = app.channels.versions(channels)
        collected.withLock { c in
            // The usual first region of one channel: taken whole (no second array).
            if c.isEmpty && versions.count == 1 {
                c = versions
            } else {
                for v in versions { c.record(v.channel, at: v.version) }
            }
        }
    }

    @usableFromInline
    func addRegion(_ id: String, channels: [Channel], render: @escaping @Sendable (Page, inout HTMLOutput) -> Void) -> LiveView.Region {
        let region = LiveView.Region(id: id, channels: channels, render: render)
        // One region per id: a region registered again (nested in one being re-rendered)
        // replaces its earlier self in place, keeping its count of renders.
        view.state.withLock { st in
            if let i = st.regions.firstIndex(where: { $0.id == id }) {
                region.renders.store(st.regions[i].renders.load(ordering: .relaxed), ordering: .relaxed)
                region.hasActions.store(st.regions[i].hasActions.load(ordering: .relaxed), ordering: .relaxed)
                st.regions[i] = region
            } else {
                st.regions.append(region)
            }
        }
        return region
    }

    /// How the runtime follows channels: server-sent events (falling back to long-polls when
    /// they do not get through) or long-polls only.
    public enum Transport: String, Sendable, CaseIterable, ParameterValue { case events, poll }

    /// The runtime's anchor: a status element carrying the view id and the channel versions of
    /// the live regions built so far. Put it at the end of `body`.
    // Concrete result types (not `some`): an opaque type from another module made every page
    // containing it resolve its metadata by demangling at run time.
    public func liveStatus(transport: Transport = .events) -> LiveStatus {
        LiveStatus(view: view.id, versions: collected.withLock { $0 }, transport: transport, session: needsSessionField ? session.id : nil)
    }

    /// The runtime's script tag (a cacheable file; works under `script-src 'self'`).
    public var runtimeScript: Script { Self.runtimeElement }

    /// The element, its address with the runtime's version (a constant of the process).
    static var runtimeElement: Script { Script().src(runtimeURL).defer() }
    static let runtimeURL = LiveAppCore.runtimePath + "?v=" + LiveAppCore.runtime.version

    /// `runtimeScript` rendered once: what every live document includes.
    @usableFromInline
    static let runtimeHTML = SharedHTML(runtimeElement)
}
