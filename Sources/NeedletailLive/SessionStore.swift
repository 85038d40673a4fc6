import NeedletailHTTP
import NeedletailPOSIX
import Synchronization

/// The sessions in memory: looked up by the id in the `nt_session` cookie (or, when the browser
/// refuses cookies, the `_s` field that action forms then carry), expired after an idle time,
/// and capped in number with least-recently-used eviction.
public final class SessionStore: Sendable {
    /// The cookie's name.
    public let cookieName: String
    /// Idle time after which a session is forgotten (seconds).
    public let idleTimeout: UInt64
    /// Most sessions kept; the least recently used goes first.
    public let maxSessions: Int
    /// Views whose actions stay valid per session (the back button works for this many pages).
    public let viewsKept: Int
    /// Most actions per session, over all its views; the oldest go first.
    public let maxActions: Int

    let sessions = Mutex<[String: Session]>([:])
    let clock: @Sendable () -> UInt64

    public init(
        cookieName: String = "nt_session", idleTimeout: UInt64 = 30 * 60, maxSessions: Int = 100_000,
        viewsKept: Int = 8, maxActions: Int = 512, clock: @escaping @Sendable () -> UInt64 = secondsSinceBoot
    ) {
        self.cookieName = cookieName
        self.idleTimeout = idleTimeout
        self.maxSessions = maxSessions
        self.viewsKept = viewsKept
        self.maxActions = maxActions
        self.clock = clock
    }

    /// Number of sessions in memory.
    public var count: Int { sessions.withLock { $0.count } }

    /// The session whose id `request` carries (cookie first, then an `_s` query or form
    /// field), if it exists and has not expired, and where its id came from. Touches it.
    public func existing(for request: Request) -> (session: Session, source: SessionSource)? {
        let now = clock()
        for carrier in SessionIDCarrier.allCases {
            // The `_s` fields (the fallback for browsers that refuse the cookie) only from this
            // site's own pages: a link or form on another site carrying an id the attacker made
            // for themselves would otherwise put the visitor in the attacker's session (session
            // fixation; browsers say where a request comes from in Sec-Fetch-Site, which older
            // ones and other clients do not send).
            if carrier != .cookie, let site = request.headers["sec-fetch-site"], site != "same-origin" && site != "none" { break }
            guard let id = carrier.id(in: request, cookieName: cookieName), id.utf8.count == 32 else { continue }
            let found: Session? = sessions.withLock { all in
                guard let s = all[id] else { return nil }
                let expired = s.state.withLock { st -> Bool in
                    // Another loop may have touched the session after `now` was read, so its
                    // time can be later than ours (an unsigned `now - lastUsed` then trapped:
                    // two requests of one session on two loops at a second's turn).
                    if now > st.lastUsed && now - st.lastUsed > idleTimeout { return true }
                    st.lastUsed = max(st.lastUsed, now)
                    return false
                }
                if expired { all[id] = nil; return nil }
                return s
            }
            if let found { return (found, carrier.source) }
        }
        return nil
    }

    /// The request's session, or a new one (`source` `.new`: the response must set the cookie).
    public func session(for request: Request) -> (session: Session, source: SessionSource) {
        if let found = existing(for: request) { return found }
        let now = clock()
        let s = Session(id: randomToken(), now: now)
        sessions.withLock { all in
            if all.count >= maxSessions { evict(&all, now: now) }
            all[s.id] = s
        }
        return (s, .new)
    }

    /// Drops expired sessions, then the least recently used tenth if still full.
    func evict(_ all: inout [String: Session], now: UInt64) {
        let ages = all.map { (id: $0.key, used: $0.value.state.withLock { $0.lastUsed }) }
        for a in ages where now > a.used && now - a.used > idleTimeout { all[a.id] = nil }
        guard all.count >= maxSessions else { return }
        let drop = max(1, maxSessions / 10)
        for a in ages.filter({ all[$0.id] != nil }).sorted(by: { $0.used < $1.used }).prefix(drop) { all[a.id] = nil }
    }

    /// The `Set-Cookie` value for `session`: HttpOnly, SameSite=Lax, Secure when the request came
    /// over HTTPS (directly, or as a proxy said with `X-Forwarded-Proto: https`).
    public func cookie(for session: Session, request: Request) -> String {
        var c = "\(cookieName)=\(session.id); Path=/; HttpOnly; SameSite=Lax"
        if request.isSecure || request.headers["x-forwarded-proto"]?.lowercased() == "https" { c += "; Secure" }
        return c
    }
}
