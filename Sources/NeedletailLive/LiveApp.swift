import NeedletailPOSIX
import NeedletailHTML
import NeedletailHTTP

/// A router plus sessions, actions and channels: `page` registers live pages; everything under
/// `/_nt/` is the framework's.
public struct LiveApp: Responder {
    public let core: LiveAppCore
    public var router: Router

    public init(router: Router = Router(), core: LiveAppCore = LiveAppCore()) {
        self.router = router
        self.core = core
    }

    /// The channels, for `notify`.
    public var channels: Channels { core.channels }

    /// A public folder served under its prefix (see `StaticFiles`).
    public var staticFiles: StaticFiles?

    /// Serves `sheet` at `path` as a cached asset; returns the URL to link (with its version).
    public mutating func stylesheet(_ path: String, _ sheet: Stylesheet) -> String {
        let asset = StaticAsset(sheet.css, type: "text/css; charset=utf-8")
        router.get(path) { asset.respond(to: $0) }
        return path + "?v=" + asset.version
    }

    /// Registers a live page at `path` (GET): `build` gets a `Page` (request, session, view).
    /// With a session backing (`SessionStore.backing`) the page waits for its session first
    /// (an async route; the build itself stays synchronous).
    public mutating func page(_ path: String, _ build: @escaping @Sendable (Page) throws -> Response) {
        let core = core
        if core.sessions.backing == nil {
            router.get(path) { request in core.page(for: request, build) }
        } else {
            // The session may be on another backend's side: loaded (or saved) first.
            router.get(path) { request async throws -> Response in await core.page(restoring: request, build) }
        }
    }

    /// Registers a live page that awaits its data (a database, another service) before it
    /// renders: `app.page("/x") { page async throws -> Response in … }`; it may take `deadline`
    /// milliseconds.
    public mutating func page(_ path: String, deadline: Int = Router.defaultDeadline, _ build: @escaping AsyncPage) {
        let core = core
        router.get(path, deadline: deadline) { request in try await core.page(for: request, build) }
    }

    public func respond(to request: Request) -> Response {
        // Written out, not `a ?? b ?? c`: each optional the chain made was a copy of the whole
        // response (docs/PERFORMANCE.md, "Response copies").
        if LiveAppCore.isInternal(request) { return core.internalResponse(request) }
        if let staticFiles, let r = staticFiles.respond(to: request) { return r }
        return router.respond(to: request)
    }
}
