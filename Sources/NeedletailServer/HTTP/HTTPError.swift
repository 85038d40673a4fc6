import NeedletailHTTP

/// Why a request was refused, and with what status.
struct HTTPError: Error, Equatable, CustomStringConvertible {
    let status: HTTPStatus
    let reason: String
    init(_ status: HTTPStatus, _ reason: String) { self.status = status; self.reason = reason }
    var description: String { "\(status.code) \(reason)" }

    static func bad(_ reason: String) -> HTTPError { HTTPError(.badRequest, reason) }
}
