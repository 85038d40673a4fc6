import NeedletailBytes
import NeedletailHTML

/// Turns a request into a response. Implementations are shared by every loop, hence `Sendable`.
/// An async handler's answer is a `.pending` response, which the codec runs as a task.
public protocol Responder: Sendable {
    func respond(to request: Request) -> Response
}

/// A page handler: a synchronous function from request to response, run on the loop that
/// received the request.
public typealias Handler = @Sendable (Request) -> Response

/// Routes by exact path and method. HEAD is served by the GET handler (the codec drops the
/// body); a known path with another method gets 405 with an `Allow` field; an unknown path gets
/// the not-found page.
public struct Router: Responder {
    /// How long an async handler may take unless its route says otherwise (milliseconds).
    public static let defaultDeadline = 30_000

    /// Routes in registration order; a short list is scanned (cheaper than hashing the path),
    /// a long one is found through `index`.
    private var routes: [Route]
    private var index: [String: Int]
    private var notFound: Handler

    public init() {
        routes = []
        index = [:]
        notFound = { _ in Router.errorPage(.notFound, detail: "No page at this address.") }
    }

    /// Registers `handler` for `method` requests to `path`.
    public mutating func on(_ method: HTTPMethod, _ path: String, _ handler: @escaping Handler) {
        add(method, path, .sync(handler))
    }

    /// Registers the async `handler` for `method` requests to `path`; it may take `deadline`
    /// milliseconds (then 503), 30 s unless said.
    public mutating func on(_ method: HTTPMethod, _ path: String, deadline: Int = Router.defaultDeadline,
                            _ handler: @escaping AsyncHandler) {
        add(method, path, .async(handler, deadline: deadline))
    }

    private mutating func add(_ method: HTTPMethod, _ path: String, _ handler: RouteHandler) {
        if let i = index[path] {
            routes[i].handlers[method.ordinal] = handler
        } else {
            var route = Route(path: path, pathBytes: Array(path.utf8), handlers: Array(repeating: nil, count: HTTPMethod.allCases.count))
            route.handlers[method.ordinal] = handler
            index[path] = routes.count
            routes.append(route)
        }
    }

    private func route(for request: Request) -> Route? {
        if routes.count <= 16 {
            return request.withPathBytes { path in
                for r in routes where r.pathBytes.count == path.count {
                    if r.pathBytes.withUnsafeBufferPointer({ memcmpEqual($0, path) }) { return r }
                }
                return nil
            }
        }
        return index[request.path].map { routes[$0] }
    }

    /// Registers a GET (and HEAD) handler.
    public mutating func get(_ path: String, _ handler: @escaping Handler) { on(.get, path, handler) }
    /// Registers a POST handler.
    public mutating func post(_ path: String, _ handler: @escaping Handler) { on(.post, path, handler) }
    /// Registers an async GET (and HEAD) handler: `router.get("/x") { request async throws in … }`.
    public mutating func get(_ path: String, deadline: Int = Router.defaultDeadline, _ handler: @escaping AsyncHandler) {
        on(.get, path, deadline: deadline, handler)
    }
    /// Registers an async POST handler.
    public mutating func post(_ path: String, deadline: Int = Router.defaultDeadline, _ handler: @escaping AsyncHandler) {
        on(.post, path, deadline: deadline, handler)
    }

    /// Sets the page for unknown paths.
    public mutating func setNotFound(_ handler: @escaping Handler) { notFound = handler }

    public func respond(to request: Request) -> Response {
        guard let route = route(for: request) else { return notFound(request) }
        if let h = route.handlers[request.method.ordinal] {
            var r = h.respond(to: request)
            r.setRoute(route.path)
            return r
        }
        let get = route.handlers[HTTPMethod.get.ordinal]
        if request.method == .head, let h = get {
            var r = h.respond(to: request)
            r.setRoute(route.path)
            return r
        }
        var allowed = HTTPMethod.allCases.filter { route.handlers[$0.ordinal] != nil }.map(\.rawValue)
        if get != nil && route.handlers[HTTPMethod.head.ordinal] == nil { allowed.append("HEAD") }
        var r = Router.errorPage(.methodNotAllowed, detail: "This address does not accept \(request.method.rawValue).")
        r.addHeader("Allow", allowed.sorted().joined(separator: ", "))
        return r
    }

    /// A small HTML error page; `detail` is escaped. Never includes internals.
    public static func errorPage(_ status: HTTPStatus, detail: String) -> Response {
        var body = Chunks()
        body.append("<!DOCTYPE html>\n<title>")
        body.append(escaping: status.description)
        body.append("</title>\n<h1>")
        body.append(escaping: status.description)
        body.append("</h1>\n<p>")
        body.append(escaping: detail)
        body.append("</p>\n")
        return .html(body, status: status)
    }
}

/// One path and its handlers, indexed by `HTTPMethod.ordinal`.
private struct Route: Sendable {
    let path: String
    let pathBytes: [UInt8]
    var handlers: [RouteHandler?]
}

extension Response {
    /// Sets `route`. Through a mutating method: `r.route = …` between the handler's call and
    /// the return made the optimizer copy the whole response and destroy the original, 370
    /// instructions per request (docs/PERFORMANCE.md, "Response copies").
    @inline(__always)
    mutating func setRoute(_ path: String) { route = path }
}

/// A route's handler for one method.
private enum RouteHandler: Sendable {
    case sync(Handler)
    case async(AsyncHandler, deadline: Int)

    @inline(__always)
    func respond(to request: Request) -> Response {
        switch self {
        case .sync(let h): return h(request)
        case .async(let h, let deadline): return .pending(PendingReply(request: request, deadline: deadline, handler: h))
        }
    }
}
