/// What went wrong with a query or a connection. A server error carries the server's
/// SQLSTATE (`23505` unique violation, `57014` statement timeout…) and message.
public struct PostgresError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        /// The server refused the statement (its SQLSTATE is in `sqlState`).
        case server
        /// No connection could be made (the reason is the message; retried with backoff).
        case unavailable
        /// The connection broke while the query was in flight: it may or may not have run.
        case connectionLost
        /// The client is closed, or the statement cannot be sent (a misuse, said in the message).
        case client
    }

    public let kind: Kind
    /// Five characters, as the server reports them; `nil` unless `kind == .server`.
    public let sqlState: String?
    public let message: String
    /// The server's DETAIL line, if any.
    public let detail: String?

    public init(_ kind: Kind, _ message: String, sqlState: String? = nil, detail: String? = nil) {
        self.kind = kind
        self.message = message
        self.sqlState = sqlState
        self.detail = detail
    }

    public var description: String {
        switch kind {
        case .server: return "PostgreSQL error \(sqlState ?? "?????"): \(message)" + (detail.map { " (\($0))" } ?? "")
        case .unavailable: return "PostgreSQL unavailable: \(message)"
        case .connectionLost: return "PostgreSQL connection lost: \(message)"
        case .client: return "PostgreSQL client: \(message)"
        }
    }

    /// SQLSTATE 57014: the statement ran past `statement_timeout` (or was cancelled).
    public var isStatementTimeout: Bool { sqlState == "57014" }

    /// SQLSTATE 23505: a unique constraint refused the row.
    public var isUniqueViolation: Bool { sqlState == "23505" }
}
