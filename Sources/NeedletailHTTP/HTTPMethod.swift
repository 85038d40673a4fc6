/// A request method the framework routes. Methods outside this set are answered 501 by the
/// protocol codecs before they reach an app.
public enum HTTPMethod: String, Sendable, CaseIterable {
    case get = "GET"
    case head = "HEAD"
    case post = "POST"
    case put = "PUT"
    case delete = "DELETE"
    case options = "OPTIONS"
    case patch = "PATCH"

    /// The method's token as a constant (the raw value without a String).
    @inlinable
    public var name: StaticString {
        switch self {
        case .get: return "GET"
        case .head: return "HEAD"
        case .post: return "POST"
        case .put: return "PUT"
        case .delete: return "DELETE"
        case .options: return "OPTIONS"
        case .patch: return "PATCH"
        }
    }

    /// A dense index (0 ..< allCases.count), for tables indexed by method.
    @inlinable
    public var ordinal: Int {
        switch self {
        case .get: return 0
        case .head: return 1
        case .post: return 2
        case .put: return 3
        case .delete: return 4
        case .options: return 5
        case .patch: return 6
        }
    }
}
