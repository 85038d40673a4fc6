import Glibc
import NeedletailLive
import NeedletailPostgres
import Synchronization

/// Sessions kept in PostgreSQL (`nt_session`, `nt_session_value`), so that a visitor whose
/// backend is lost goes on at another with the same session and user name. The `SessionStore`
/// in front of it is the cache: see `SessionBacking`. Sessions idle for longer than
/// `idleTimeout` are deleted, at most once every five minutes, by whichever backend saves a
/// new session then.
public final class SharedSessions: SessionBacking {
    public static let schemaVersion = 1

    public let client: PostgresClient
    /// Seconds of idleness after which a session is deleted (the `SessionStore`'s).
    public let idleTimeout: UInt64
    let lastSweep = Atomic<Int>(0)

    init(client: PostgresClient, idleTimeout: UInt64) {
        (self.client, self.idleTimeout) = (client, idleTimeout)
    }

    /// Makes the tables if needed.
    public static func open(on client: PostgresClient, idleTimeout: UInt64 = 30 * 60) async throws -> SharedSessions {
        try await client.makeSchema(
            "nt_session", version: schemaVersion, columns: "id,user_name,last_used;session_id,key,value",
            create: [
                "CREATE TABLE nt_session (id text PRIMARY KEY, user_name text NOT NULL, last_used timestamptz NOT NULL)",
                "CREATE INDEX nt_session_last_used ON nt_session (last_used)",
                """
                CREATE TABLE nt_session_value (session_id text NOT NULL REFERENCES nt_session (id) ON DELETE CASCADE, \
                key text NOT NULL, value text NOT NULL, PRIMARY KEY (session_id, key))
                """,
            ])
        return SharedSessions(client: client, idleTimeout: idleTimeout)
    }

    public func load(id: String, idleTimeout: UInt64) async throws -> StoredSession? {
        let rows = try await client.query(
            """
            SELECT s.user_name, v.key, v.value FROM nt_session s LEFT JOIN nt_session_value v ON v.session_id = s.id \
            WHERE s.id = $1 AND s.last_used > now() - make_interval(secs => $2::float8)
            """, [id, Int(idleTimeout)])
        guard rows.count > 0 else { return nil }
        var session = StoredSession(id: id, userName: try rows.decode(0, 0, as: String.self))
        for row in 0..<rows.count {
            if let key = try rows.decodeIfPresent(row, 1, as: String.self), let value = try rows.decodeIfPresent(row, 2, as: String.self) {
                session.values[key] = value
            }
        }
        try await touch(id: id)  // used now
        return session
    }

    public func save(_ session: StoredSession) async throws {
        try await client.transaction { tx in
            try await tx.execute("INSERT INTO nt_session (id, user_name, last_used) VALUES ($1, $2, now())", [session.id, session.userName])
            for (key, value) in session.values {
                try await tx.execute("INSERT INTO nt_session_value (session_id, key, value) VALUES ($1, $2, $3)", [session.id, key, value])
            }
        }
        try await sweepIfDue()
    }

    public func touch(id: String) async throws {
        _ = try await client.execute("UPDATE nt_session SET last_used = now() WHERE id = $1", [id])
    }

    public func set(id: String, key: String, value: String?) async throws {
        if let value {
            _ = try await client.execute(
                """
                INSERT INTO nt_session_value (session_id, key, value) VALUES ($1, $2, $3) \
                ON CONFLICT (session_id, key) DO UPDATE SET value = excluded.value
                """, [id, key, value])
        } else {
            _ = try await client.execute("DELETE FROM nt_session_value WHERE session_id = $1 AND key = $2", [id, key])
        }
    }

    /// Deletes the sessions idle for longer than `idleTimeout`, once every five minutes.
    func sweepIfDue() async throws {
        let now = Int(time(nil)), last = lastSweep.load(ordering: .relaxed)
        guard now - last >= 300, lastSweep.compareExchange(expected: last, desired: now, ordering: .relaxed).exchanged else { return }
        _ = try await client.execute("DELETE FROM nt_session WHERE last_used < now() - make_interval(secs => $1::float8)", [Int(idleTimeout)])
    }
}
