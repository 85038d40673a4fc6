import NeedletailHTTP

/// Where a request's session id came from.
public enum SessionSource: Sendable, Equatable {
    /// The session cookie.
    case cookie
    /// An `_s` form or query field: the browser refuses the cookie (it was set, and did not come
    /// back), so the id goes wherever the session must follow: forms, the redirect after an
    /// action, `Page.url` links, the runtime's polls.
    case field
    /// None (or an unknown or expired one): a new session, whose cookie the response sets.
    case new
}

/// The places a request may carry a session id, in the order they are asked: the cookie,
/// then the `_s` fields of the query and of a form body (for browsers that refuse the cookie).
enum SessionIDCarrier: CaseIterable {
    case cookie, queryField, formField

    /// The id `request` carries here, if any.
    func id(in request: Request, cookieName: String) -> String? {
        switch self {
        case .cookie: return request.cookie(cookieName)
        case .queryField: return request.query["_s"]
        case .formField: return request.form["_s"]
        }
    }

    var source: SessionSource { self == .cookie ? .cookie : .field }
}
