import NeedletailBytes
import NeedletailHTML

/// Turns a request into a response. Implementations are shared by every loop, hence `Sendable`.
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

    /// Sets the page for unknown paths.
    public mutating func setNotFound(_ handler: @escaping Handler) { notFound = handler }

    public func respond(to request: Request) -> Response {
        guard let route = route(for: request) else { return notFound(request) }
        if let h = route.handlers[request.method.ordinal] { return h(request) }
        let get = route.handlers[HTTPMethod.get.ordinal]
        if request.method == .head, let h = get { return h(request) }
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
    var handlers: [Handler?]
}
