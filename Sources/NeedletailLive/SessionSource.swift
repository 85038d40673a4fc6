import NeedletailHTTP
import NeedletailPOSIX

/// Where a request's session id came from.
enum SessionSource {
    /// The session cookie.
    case cookie
    /// An `_s` form or query field: the browser refuses the cookie (it was set, and did not come
    /// back), so the id goes wherever the session must follow: forms, the redirect after an
    /// action, `Page.url` links, the runtime's polls.
    case field
    /// None (or an unknown or expired one): a new session, whose cookie the response sets.
    case new
}
