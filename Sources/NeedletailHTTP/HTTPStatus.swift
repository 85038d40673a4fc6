/// A response status: its code and reason phrase.
public struct HTTPStatus: Sendable, Equatable, CustomStringConvertible {
    public let code: Int
    public let reason: String

    @inlinable public init(code: Int, reason: String) { self.code = code; self.reason = reason }

    /// The status for `code`, with the standard reason phrase when there is one.
    public init(code: Int) {
        self.init(code: code, reason: HTTPStatus.standardReason(code))
    }

    public var description: String { "\(code) \(reason)" }

    /// Whether a response with this status never has a body (1xx, 204, 304).
    public var forbidsBody: Bool { code < 200 || code == 204 || code == 304 }

    @inlinable public static var ok: HTTPStatus { HTTPStatus(code: 200, reason: "OK") }
    @inlinable public static var created: HTTPStatus { HTTPStatus(code: 201, reason: "Created") }
    @inlinable public static var noContent: HTTPStatus { HTTPStatus(code: 204, reason: "No Content") }
    @inlinable public static var movedPermanently: HTTPStatus { HTTPStatus(code: 301, reason: "Moved Permanently") }
    @inlinable public static var found: HTTPStatus { HTTPStatus(code: 302, reason: "Found") }
    @inlinable public static var permanentRedirect: HTTPStatus { HTTPStatus(code: 308, reason: "Permanent Redirect") }
    @inlinable public static var seeOther: HTTPStatus { HTTPStatus(code: 303, reason: "See Other") }
    @inlinable public static var notModified: HTTPStatus { HTTPStatus(code: 304, reason: "Not Modified") }
    @inlinable public static var partialContent: HTTPStatus { HTTPStatus(code: 206, reason: "Partial Content") }
    @inlinable public static var rangeNotSatisfiable: HTTPStatus { HTTPStatus(code: 416, reason: "Range Not Satisfiable") }
    @inlinable public static var badRequest: HTTPStatus { HTTPStatus(code: 400, reason: "Bad Request") }
    @inlinable public static var gone: HTTPStatus { HTTPStatus(code: 410, reason: "Gone") }
    @inlinable public static var forbidden: HTTPStatus { HTTPStatus(code: 403, reason: "Forbidden") }
    @inlinable public static var notFound: HTTPStatus { HTTPStatus(code: 404, reason: "Not Found") }
    @inlinable public static var methodNotAllowed: HTTPStatus { HTTPStatus(code: 405, reason: "Method Not Allowed") }
    @inlinable public static var requestTimeout: HTTPStatus { HTTPStatus(code: 408, reason: "Request Timeout") }
    @inlinable public static var lengthRequired: HTTPStatus { HTTPStatus(code: 411, reason: "Length Required") }
    @inlinable public static var contentTooLarge: HTTPStatus { HTTPStatus(code: 413, reason: "Content Too Large") }
    @inlinable public static var uriTooLong: HTTPStatus { HTTPStatus(code: 414, reason: "URI Too Long") }
    @inlinable public static var expectationFailed: HTTPStatus { HTTPStatus(code: 417, reason: "Expectation Failed") }
    @inlinable public static var requestHeaderFieldsTooLarge: HTTPStatus { HTTPStatus(code: 431, reason: "Request Header Fields Too Large") }
    @inlinable public static var internalServerError: HTTPStatus { HTTPStatus(code: 500, reason: "Internal Server Error") }
    @inlinable public static var notImplemented: HTTPStatus { HTTPStatus(code: 501, reason: "Not Implemented") }
    @inlinable public static var serviceUnavailable: HTTPStatus { HTTPStatus(code: 503, reason: "Service Unavailable") }
    @inlinable public static var httpVersionNotSupported: HTTPStatus { HTTPStatus(code: 505, reason: "HTTP Version Not Supported") }

    /// The standard reason phrase for `code`.
    public static func standardReason(_ code: Int) -> String {
        switch code {
        case 100: return "Continue"
        case 200: return "OK"
        case 201: return "Created"
        case 202: return "Accepted"
        case 204: return "No Content"
        case 206: return "Partial Content"
        case 301: return "Moved Permanently"
        case 302: return "Found"
        case 303: return "See Other"
        case 304: return "Not Modified"
        case 307: return "Temporary Redirect"
        case 308: return "Permanent Redirect"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 408: return "Request Timeout"
        case 409: return "Conflict"
        case 410: return "Gone"
        case 411: return "Length Required"
        case 413: return "Content Too Large"
        case 414: return "URI Too Long"
        case 415: return "Unsupported Media Type"
        case 416: return "Range Not Satisfiable"
        case 417: return "Expectation Failed"
        case 422: return "Unprocessable Content"
        case 429: return "Too Many Requests"
        case 431: return "Request Header Fields Too Large"
        case 500: return "Internal Server Error"
        case 501: return "Not Implemented"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        case 504: return "Gateway Timeout"
        case 505: return "HTTP Version Not Supported"
        default: return "Status \(code)"
        }
    }
}
