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

    /// Where sessions outlive this process (several backends share them); nil: memory only.
    public let backing: (any SessionBacking)?

    let sessions = Mutex<[String: Session]>([:])
    let clock: @Sendable () -> UInt64

    public init(
        cookieName: String = "nt_session", idleTimeout: UInt64 = 30 * 60, maxSessions: Int = 100_000,
        viewsKept: Int = 8, maxActions: Int = 512, backing: (any SessionBacking)? = nil,
        clock: @escaping @Sendable () -> UInt64 = secondsSinceBoot
    ) {
        self.backing = backing
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
        var carried = carriedIDs()
        while let (id, carrier) = carried.next(in: request) {
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

    /// The session ids `request` carries, where they came from, in the order they are tried.
    func carriedIDs() -> CarriedSessionIDs { CarriedSessionIDs(cookieName: cookieName) }

    /// The request's session, or a new one (`source` `.new`: the response must set the cookie).
    public func session(for request: Request) -> (session: Session, source: SessionSource) {
        if let found = existing(for: request) { return found }
        return (keep(Session(id: randomToken(), now: clock())), .new)
    }

    /// `session` in memory (evicting when full).
    func keep(_ session: Session) -> Session {
        let now = clock()
        return sessions.withLock { all in
            if let there = all[session.id] { return there }  // another loop restored it first
            if all.count >= maxSessions { evict(&all, now: now) }
            all[session.id] = session
            return session
        }
    }

    /// The request's session with a backing: from memory, else from the backing (a session
    /// another backend made, or this one before a restart), else a new one that the backing
    /// has saved before this returns (its cookie can go out: a visitor who lands on another
    /// backend next goes on with it). When the backing fails, the session lives in memory only
    /// and the failure goes to `onError`.
    public func session(for request: Request, onError: @Sendable (String) -> Void) async -> (session: Session, source: SessionSource) {
        guard let backing else { return session(for: request) }
        if let found = existing(for: request) {
            await touch(found.session, backing: backing, onError: onError)
            return found
        }
        var carried = carriedIDs()
        while let (id, carrier) = carried.next(in: request) {
            do {
                if let stored = try await backing.load(id: id, idleTimeout: idleTimeout) {
                    return (keep(Session(restoring: stored, now: clock())), carrier.source)
                }
            } catch {
                onError("cannot load session \(id.prefix(8))…: \(error)")
            }
        }
        let new = keep(Session(id: randomToken(), now: clock()))
        do { try await backing.save(new.stored) } catch { onError("cannot save a new session: \(error)") }
        return (new, .new)
    }

    /// Tells the backing of a use, at most once a minute per session.
    func touch(_ session: Session, backing: any SessionBacking, onError: @Sendable (String) -> Void) async {
        let now = clock()
        let due = session.state.withLock { st -> Bool in
            guard now >= st.savedUse + 60 else { return false }
            st.savedUse = now
            return true
        }
        guard due else { return }
        do { try await backing.touch(id: session.id) } catch { onError("cannot record the use of a session: \(error)") }
    }

    /// Sets a value of `session` (nil removes it) and, with a backing, saves it there before
    /// returning: a visitor who goes on at another backend finds it. Without a backing it is
    /// the same as the session's subscript.
    public func set(_ key: String, _ value: String?, in session: Session) async throws {
        session[key] = value
        try await backing?.set(id: session.id, key: key, value: value)
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

// MARK: Handing sessions to a successor process

extension SessionStore {
    /// Every session in memory as bytes that `restore(_:)` reads: the id, the user name, when
    /// it was last used, and its values that are strings (what a live upgrade hands the new
    /// process, docs/UPGRADE.md; views do not go: their regions are the old build's code).
    public func exported() -> [UInt8] {
        var out: [UInt8] = []
        func put(_ n: UInt64) { withUnsafeBytes(of: n.littleEndian) { out += $0 } }
        func put(_ s: String) {
            put(UInt64(s.utf8.count))
            out += s.utf8
        }
        let all = sessions.withLock { Array($0.values) }
        put(UInt64(all.count))
        for s in all {
            let (lastUsed, values) = s.state.withLock { ($0.lastUsed, $0.values.compactMapValues { $0 as? String }) }
            put(s.id)
            put(s.userName)
            put(lastUsed)
            put(UInt64(values.count))
            for (k, v) in values.sorted(by: { $0.key < $1.key }) {
                put(k)
                put(v)
            }
        }
        return out
    }

    /// Takes in the sessions `exported()` wrote (those not expired); returns how many. Bytes
    /// that do not parse end the restore there (what came before is kept).
    @discardableResult
    public func restore(_ bytes: [UInt8]) -> Int {
        var at = 0
        func take() -> UInt64? {
            guard at + 8 <= bytes.count else { return nil }
            var n: UInt64 = 0
            for i in 0..<8 { n |= UInt64(bytes[at + i]) << (8 * UInt64(i)) }
            at += 8
            return n
        }
        func text() -> String? {
            guard let n = take(), n <= UInt64(bytes.count - at) else { return nil }
            defer { at += Int(n) }
            return String(decoding: bytes[at..<at + Int(n)], as: UTF8.self)
        }
        guard let count = take() else { return 0 }
        let now = clock()
        var restored = 0
        for _ in 0..<count {
            guard let id = text(), let name = text(), let lastUsed = take(), let n = take() else { break }
            var values: [String: String] = [:]
            for _ in 0..<n {
                guard let k = text(), let v = text() else { return restored }
                values[k] = v
            }
            if now > lastUsed && now - lastUsed > idleTimeout { continue }
            let session = Session(restoring: StoredSession(id: id, userName: name, values: values), now: min(lastUsed, now))
            _ = keep(session)
            restored += 1
        }
        return restored
    }
}

/// The session ids a request carries, each read only when the one before it did not lead to a
/// session (a page view with a live cookie looks at nothing else: reading the header, query
/// and form fields up front was 1,600 instructions per board page; docs/PERFORMANCE.md). The
/// request is passed to each `next` rather than kept: a copy of it is a retain of each part.
struct CarriedSessionIDs {
    let cookieName: String
    private var tried = 0

    init(cookieName: String) { self.cookieName = cookieName }

    mutating func next(in request: Request) -> (id: String, carrier: SessionIDCarrier)? {
        while tried < SessionIDCarrier.allCases.count {
            let carrier = SessionIDCarrier.allCases[tried]
            tried += 1
            // The `_s` fields (the fallback for browsers that refuse the cookie) only from this
            // site's own pages: a link or form on another site carrying an id the attacker made
            // for themselves would otherwise put the visitor in the attacker's session (session
            // fixation; browsers say where a request comes from in Sec-Fetch-Site, which older
            // ones and other clients do not send).
            if carrier != .cookie, let site = request.headers["sec-fetch-site"], site != "same-origin" && site != "none" {
                tried = SessionIDCarrier.allCases.count
                return nil
            }
            guard let id = carrier.id(in: request, cookieName: cookieName), id.utf8.count == 32 else { continue }
            return (id, carrier)
        }
        return nil
    }
}
