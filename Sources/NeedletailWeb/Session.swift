import Synchronization

/// 128 random bits from the kernel's CSPRNG, as 32 lower-case hex digits.
public func randomToken() -> String { randomHex(bytes: 16) }

/// `bytes` (at most 16) random bytes from the kernel's CSPRNG as lower-case hex digits.
func randomHex(bytes: Int) -> String {
    SecureRandom.withBytes(bytes) { raw in
        String(unsafeUninitializedCapacity: 2 * raw.count) { out in
            let digits: StaticString = "0123456789abcdef"
            let d = digits.utf8Start
            for (i, b) in raw.enumerated() {
                out[2 * i] = d[Int(b >> 4)]
                out[2 * i + 1] = d[Int(b & 15)]
            }
            return 2 * raw.count
        }
    }
}

/// Bytes from the kernel's CSPRNG (`/dev/urandom`, the same generator as `getrandom(2)`), read
/// 4 KiB at a time into a per-thread buffer: a page view needs two tokens, and two system calls
/// per token cost more than the rest of making them. Each byte is handed out once.
enum SecureRandom {
    final class Pool {
        var bytes = [UInt8](repeating: 0, count: 4096)
        var used = 4096
    }

    static let key: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k) { p in if let p { Unmanaged<Pool>.fromOpaque(p).release() } }
        return k
    }()

    static let urandom: Int32 = open("/dev/urandom", O_RDONLY | O_CLOEXEC)

    /// `n` at most 16 (what tokens need; the fallback makes 16).
    static func withBytes<T>(_ n: Int, _ body: (UnsafeRawBufferPointer) -> T) -> T {
        let pool: Pool
        if let p = pthread_getspecific(key) {
            pool = Unmanaged<Pool>.fromOpaque(p).takeUnretainedValue()
        } else {
            pool = Pool()
            pthread_setspecific(key, Unmanaged.passRetained(pool).toOpaque())
        }
        if pool.used + n > pool.bytes.count && !refill(pool) {
            // No /dev/urandom (a chroot): Swift's generator, which uses getrandom(2).
            var g = SystemRandomNumberGenerator()
            let words = (g.next() as UInt64, g.next() as UInt64)
            return withUnsafeBytes(of: words) { body(UnsafeRawBufferPointer(rebasing: $0[0..<min(n, 16)])) }
        }
        defer {
            // Handed out once: wiped and skipped.
            for i in pool.used..<(pool.used + n) { pool.bytes[i] = 0 }
            pool.used += n
        }
        return pool.bytes.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[pool.used..<(pool.used + n)])) }
    }

    static func refill(_ pool: Pool) -> Bool {
        guard urandom >= 0 else { return false }
        var got = 0
        while got < pool.bytes.count {
            let r = pool.bytes.withUnsafeMutableBytes { read(urandom, $0.baseAddress! + got, $0.count - got) }
            if r < 0 && errno == EINTR { continue }
            if r <= 0 { return false }
            got += r
        }
        pool.used = 0
        return true
    }
}

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
        /// Views, oldest first; at most `SessionStore.viewsKept`.
        var views: [LiveView] = []
    }

    init(id: String, now: UInt64) {
        self.id = id
        userName = "user-" + randomHex(bytes: 6)
        state = Mutex(State(lastUsed: now))
    }

    /// A value the app stored for this session.
    public subscript(key: String) -> (any Sendable)? {
        get { state.withLock { $0.values[key] } }
        set { state.withLock { $0.values[key] = newValue } }
    }
}

/// Where a request's session id came from.
enum SessionSource {
    /// The session cookie.
    case cookie
    /// An `_s` form or query field: the browser refuses the cookie (it was set, and did not come
    /// back), so the id goes wherever the session must follow: forms, the redirect after an
    /// action, `Page.url` links, the runtime's polls.
    case field
    /// None (or an unknown or expired one): a new session, whose cookie the response sets.
    case new
}

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

    public init(cookieName: String = "nt_session", idleTimeout: UInt64 = 30 * 60, maxSessions: Int = 100_000,
                viewsKept: Int = 8, maxActions: Int = 512, clock: @escaping @Sendable () -> UInt64 = secondsSinceBoot) {
        self.cookieName = cookieName
        self.idleTimeout = idleTimeout
        self.maxSessions = maxSessions
        self.viewsKept = viewsKept
        self.maxActions = maxActions
        self.clock = clock
    }

    /// Number of sessions in memory.
    public var count: Int { sessions.withLock { $0.count } }

    /// The session whose id `request` carries (cookie first, then an `_s` form or query field),
    /// if it exists and has not expired. Touches it.
    public func existing(for request: Request) -> Session? { find(for: request)?.session }

    /// The request's live session and where its id came from (`.cookie` or `.field`).
    func find(for request: Request) -> (session: Session, source: SessionSource)? {
        let now = clock()
        // The `_s` fields (the fallback for browsers that refuse the cookie) only from this
        // site's own pages: a link or form on another site carrying an id the attacker made
        // for themselves would otherwise put the visitor in the attacker's session (session
        // fixation; browsers say where a request comes from in Sec-Fetch-Site, which older
        // ones and other clients do not send).
        // The cookie first; the `_s` fields only when there is no usable cookie.
        for source in 0..<3 {
            if source == 1, let site = request.headers["sec-fetch-site"], site != "same-origin" && site != "none" { break }
            let value = source == 0 ? request.cookie(cookieName) : source == 1 ? request.query["_s"] : request.form["_s"]
            guard let id = value, id.utf8.count == 32 else { continue }
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
            if let found { return (found, source == 0 ? .cookie : .field) }
        }
        return nil
    }

    /// The request's session, or a new one (`isNew`: the response must set the cookie).
    public func session(for request: Request) -> (session: Session, isNew: Bool) {
        let r = resolve(for: request)
        return (r.session, r.source == .new)
    }

    /// `session(for:)`, and where its id came from.
    func resolve(for request: Request) -> (session: Session, source: SessionSource) {
        if let found = find(for: request) { return found }
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

import Glibc

/// Seconds on the monotonic clock.
@Sendable public func secondsSinceBoot() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec)
}

extension Request {
    /// The value of cookie `name`, if the request has it. Scans the Cookie fields in place.
    public func cookie(_ name: String) -> String? {
        var name = name
        return name.withUTF8 { key -> String? in
            if key.isEmpty { return nil }
            return headers.firstValue("cookie") { value -> String? in
                value.withUnsafeBufferPointer { v in
                    var i = 0
                    while i < v.count {
                        while i < v.count && (v[i] == 32 || v[i] == UInt8(ascii: ";")) { i += 1 }
                        let pairStart = i
                        while i < v.count && v[i] != UInt8(ascii: ";") { i += 1 }
                        let pair = UnsafeBufferPointer(rebasing: v[pairStart..<i])
                        if pair.count > key.count, pair[key.count] == UInt8(ascii: "="),
                           memcmp(pair.baseAddress!, key.baseAddress!, key.count) == 0 {
                            return String(decoding: UnsafeBufferPointer(rebasing: pair[(key.count + 1)...]), as: UTF8.self)
                        }
                    }
                    return nil
                }
            }
        }
    }
}
