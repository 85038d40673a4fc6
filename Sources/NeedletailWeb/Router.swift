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
    private var routes: [String: [HTTPMethod: Handler]] = [:]
    private var notFound: Handler = { request in
        Router.errorPage(.notFound, detail: "No page at this address.")
    }

    public init() {}

    /// Registers `handler` for `method` requests to `path`.
    public mutating func on(_ method: HTTPMethod, _ path: String, _ handler: @escaping Handler) {
        routes[path, default: [:]][method] = handler
    }

    /// Registers a GET (and HEAD) handler.
    public mutating func get(_ path: String, _ handler: @escaping Handler) { on(.get, path, handler) }
    /// Registers a POST handler.
    public mutating func post(_ path: String, _ handler: @escaping Handler) { on(.post, path, handler) }

    /// Sets the page for unknown paths.
    public mutating func setNotFound(_ handler: @escaping Handler) { notFound = handler }

    public func respond(to request: Request) -> Response {
        guard let byMethod = routes[request.path] else { return notFound(request) }
        if let h = byMethod[request.method] { return h(request) }
        if request.method == .head, let h = byMethod[.get] { return h(request) }
        var allowed = byMethod.keys.map(\.rawValue)
        if byMethod[.get] != nil && byMethod[.head] == nil { allowed.append("HEAD") }
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
