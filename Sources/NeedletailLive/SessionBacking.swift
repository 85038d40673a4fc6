/// A session as a `SessionBacking` keeps it: enough for another backend to go on with it.
public struct StoredSession: Sendable, Equatable {
    public var id: String
    public var userName: String
    /// The values the app keeps with `SessionStore.set` (strings; other values stay in the
    /// memory of the backend that set them).
    public var values: [String: String]

    public init(id: String, userName: String, values: [String: String] = [:]) {
        (self.id, self.userName, self.values) = (id, userName, values)
    }
}

/// Where sessions outlive one backend (NeedletailCluster's `SharedSessions`: a table in
/// PostgreSQL). The `SessionStore` stays the cache in front of it: a backend asks the backing
/// only for a session it has not seen, saves a new one before its cookie goes out, and tells
/// it of a session's use at most once a minute.
public protocol SessionBacking: Sendable {
    /// The session `id`, unless unknown or unused for more than `idleTimeout` seconds.
    func load(id: String, idleTimeout: UInt64) async throws -> StoredSession?
    /// Saves a new session (its id is fresh).
    func save(_ session: StoredSession) async throws
    /// The session was used now.
    func touch(id: String) async throws
    /// Sets (or, with nil, removes) one value of the session.
    func set(id: String, key: String, value: String?) async throws
}
