import CPostgres
import Glibc
import NeedletailPOSIX

/// Where the database is and how the client behaves. The connection string is libpq's: a URL
/// (`postgres://user:password@host:5432/db?sslmode=require`) or `key=value` pairs; what it
/// leaves out comes from the usual PG* environment variables (`PGHOST`, `PGUSER`,
/// `PGPASSWORD`, `PGSSLMODE`…) and `~/.pgpass`, as for psql.
public struct PostgresConfiguration: Sendable {
    /// libpq's connection string (empty: everything from the environment).
    public var connectionString: String
    /// Connections kept per loop, at most. Queries share them (pipelined); a transaction holds one.
    public var connectionsPerLoop = 4
    /// The server's `statement_timeout` for this client's sessions (0: none). A statement over
    /// it fails with SQLSTATE 57014.
    public var statementTimeoutMilliseconds = 30_000
    /// How long a connection may take to be made (libpq's `connect_timeout`), unless the
    /// connection string says otherwise.
    public var connectTimeoutSeconds = 10
    /// The longest wait between two attempts to connect after failures (doubling from 100 ms).
    public var maxBackoffMilliseconds = 30_000
    /// `application_name`, seen in `pg_stat_activity`.
    public var applicationName = "needletail"

    public init(_ connectionString: String = "") {
        self.connectionString = connectionString
    }

    /// The connection string with its password, if any, hidden: for logs and errors.
    public var redacted: String {
        let s = connectionString
        if let scheme = s.firstRange(of: "://") {
            let rest = s[scheme.upperBound...]
            let authority = rest[..<(rest.firstIndex(of: "/") ?? rest.endIndex)]
            guard let at = authority.lastIndex(of: "@"), let colon = authority[..<at].firstIndex(of: ":") else { return s }
            return String(s[..<s.index(after: colon)]) + "…" + String(s[at...])
        }
        // key=value pairs: hide the value after `password=` (quoted or up to a space).
        guard let key = s.firstRange(of: "password=") else { return s }
        var end = key.upperBound
        if end < s.endIndex, s[end] == "'" {
            end = s.index(after: end)
            while end < s.endIndex, s[end] != "'" { end = s.index(end, offsetBy: s[end] == "\\" ? 2 : 1, limitedBy: s.endIndex) ?? s.endIndex }
            if end < s.endIndex { end = s.index(after: end) }
        } else {
            while end < s.endIndex, !s[end].isWhitespace { end = s.index(after: end) }
        }
        return String(s[..<key.upperBound]) + "…" + String(s[end...])
    }

    /// Checks the connection string's syntax (without connecting): a clear error at start-up
    /// instead of at the first query.
    public func validate() throws(PostgresError) {
        guard !connectionString.isEmpty else { return }
        var message: UnsafeMutablePointer<CChar>? = nil
        guard let options = PQconninfoParse(connectionString, &message) else {
            let text = message.map { PostgresConnection.trimmed(String(cString: $0)) } ?? "cannot parse it"
            if let message { PQfreemem(message) }
            throw PostgresError(.client, "bad connection string \(redacted): \(text)")
        }
        PQconninfoFree(options)
    }
}

/// A made connection handed from the worker thread that made it to the loop that uses it.
struct MadeConnection: @unchecked Sendable {
    let pointer: OpaquePointer
}

/// Makes connections on a worker thread: libpq's connect resolves host names with a blocking
/// `getaddrinfo` and its `connect_timeout` works only in the blocking call, so connecting is
/// blocking work and never runs on a loop (docs/POSTGRES.md).
enum PostgresConnector {
    static func connect(_ configuration: PostgresConfiguration) -> Result<MadeConnection, PostgresError> {
        // Ours first: what the connection string says comes later and wins.
        var pairs: [(String, String)] = [
            ("application_name", configuration.applicationName),
            ("connect_timeout", String(configuration.connectTimeoutSeconds)),
            ("keepalives", "1"), ("keepalives_idle", "30"), ("keepalives_interval", "10"), ("keepalives_count", "3"),
        ]
        if !configuration.connectionString.isEmpty { pairs.append(("dbname", configuration.connectionString)) }
        let conn: OpaquePointer? = withCStrings(pairs.map { $0.0 }) { keys in
            withCStrings(pairs.map { $0.1 }) { values in
                PQconnectdbParams(keys + [nil], values + [nil], 1)
            }
        }
        guard let conn else { return .failure(PostgresError(.unavailable, "out of memory")) }
        guard PQstatus(conn) == CONNECTION_OK else {
            let message = PQerrorMessage(conn).map { PostgresConnection.trimmed(String(cString: $0)) } ?? "cannot connect"
            PQfinish(conn)
            return .failure(PostgresError(.unavailable, message))
        }
        PQsetNoticeProcessor(conn, { _, _ in }, nil)  // NOTICEs are not errors: not on stderr
        let setup = withCStrings([String(configuration.statementTimeoutMilliseconds)]) { values in
            PQexecParams(conn, "SELECT set_config('statement_timeout', $1, false)", 1, nil, values, nil, nil, 0)
        }
        let status = PQresultStatus(setup)
        let failure = status == PGRES_TUPLES_OK ? nil : PostgresConnection.serverError(setup!)
        PQclear(setup)
        if let failure {
            PQfinish(conn)
            return .failure(failure)
        }
        guard PQsetnonblocking(conn, 1) == 0, PQenterPipelineMode(conn) == 1 else {
            let message = PQerrorMessage(conn).map { PostgresConnection.trimmed(String(cString: $0)) } ?? "pipeline mode refused"
            PQfinish(conn)
            return .failure(PostgresError(.unavailable, message))
        }
        return .success(MadeConnection(pointer: conn))
    }
}
