import NeedletailPOSIX
import NeedletailHTTP
import Synchronization

/// One visitor: an id in a cookie, a generated user name, values the app keeps for it, and the
/// views (rendered pages) whose actions and live regions are still valid.
public final class Session: Sendable {
    /// The id (128 random bits, hex). Never shown to other users.
    public let id: String
    /// A generated name, as teepeedee2 gave each visitor: "user-" and 48 random bits
    /// ("user-3f9a1c07d2e4"), drawn apart from the id, since other users see it. Unique in
    /// practice (two of a million sessions share one with odds of about 1 in 560), so an app
    /// may use it as the author of what a visitor writes.
    public let userName: String
    let state: Mutex<State>

    struct State {
        var values: [String: any Sendable] = [:]
        var lastUsed: UInt64
        /// When the backing last heard of its use (it is told at most once a minute).
        var savedUse: UInt64
        /// Views, oldest first; at most `SessionStore.viewsKept`.
        var views: [LiveView] = []
    }

    init(id: String, now: UInt64) {
        self.id = id
        userName = "user-" + randomHex(bytes: 6)
        state = Mutex(State(lastUsed: now, savedUse: now))
    }

    /// A session brought back from a `SessionBacking` (another backend made it).
    init(restoring stored: StoredSession, now: UInt64) {
        id = stored.id
        userName = stored.userName
        state = Mutex(State(values: stored.values, lastUsed: now, savedUse: now))
    }

    /// What a `SessionBacking` keeps of it: the id, the name, the values that are strings.
    var stored: StoredSession {
        StoredSession(id: id, userName: userName, values: state.withLock { $0.values.compactMapValues { $0 as? String } })
    }

    /// A value the app stored for this session.
    public subscript(key: String) -> (any Sendable)? {
        get { state.withLock { $0.values[key] } }
        set { state.withLock { $0.values[key] = newValue } }
    }
}
