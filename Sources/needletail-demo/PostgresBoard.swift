import Needletail
import NeedletailCluster
import NeedletailPostgres
import Synchronization

/// The board's records on PostgreSQL, for several backends: posts are rows of `nt_post`, each
/// write a transaction that advances its forum's channel (`SharedChannels`). Pages and live
/// regions render synchronously, so every backend keeps each forum's posts in memory, read
/// again from the database when the forum's channel moves (before its viewers are woken: they
/// never see the old list at the new version).
final class PostgresBoard: BoardRecords {
    /// A forum's posts as read when its channel was at `version` (or later).
    struct Cached {
        var version: UInt64
        var posts: [(id: Int, record: Post)]
        var authors: Set<String>
        /// The channel's counters read with the posts (`SharedChannels`).
        var appended: Int
        var rewritten: Int
    }

    let names: [String]
    let links: [String]
    let posts: PostgresTable<Post>
    let cache = Mutex<[String: Cached]>([:])
    let shared = Mutex<SharedChannels?>(nil)

    init(names: [String], posts: PostgresTable<Post>) {
        (self.names, self.posts) = (names, posts)
        links = names.map(Board.link(to:))
    }

    /// Opens (or makes) the tables, reads every forum, and starts following the channels.
    static func open(on client: PostgresClient, channels: Channels, onError: @escaping @Sendable (String) -> Void) async throws
        -> PostgresBoard
    {
        let forums = try await PostgresTable.open(Forum.self, on: client, indexes: [PostgresIndex("name", \Forum.name, unique: true)])
        for name in Board.forums where try await forums.unique(\Forum.name, name) == nil {
            do { try await forums.insert(Forum(name: name)) } catch let e as PostgresError where e.isUniqueViolation {}  // another backend did
        }
        let names = try await forums.all().sorted { $0.id < $1.id }.map(\.record.name)
        let posts = try await PostgresTable.open(
            Post.self, on: client, indexes: [PostgresIndex("forum", \Post.forum), PostgresIndex("author", \Post.author)])
        let board = PostgresBoard(names: names, posts: posts)
        let following = try await SharedChannels.open(
            on: client, channels: channels,
            beforeWake: { channel, _ in
                guard channel.name.hasPrefix("forum:") else { return }
                try await board.refresh(String(channel.name.dropFirst(6)))
            }, onError: onError)
        board.shared.withLock { $0 = following }
        for name in names { try await board.refresh(name) }  // (forums never posted to have no channel row)
        return board
    }

    /// Reads `forum`'s posts again, or waits for a read that starts after this call: a burst of
    /// posts (each one's commit here, and each one's notification) costs a few reads, not one
    /// each (`Coalescing`).
    func refresh(_ forum: String) async throws {
        let reads = readers.withLock { r in
            if let had = r[forum] { return had }
            let made = Coalescing()
            r[forum] = made
            return made
        }
        try await reads.run { try await self.read(forum) }
    }

    let readers = Mutex<[String: Coalescing]>([:])

    /// Reads `forum`'s posts: in one statement (one snapshot), its channel's row and the posts
    /// after the newest one kept. When no write since rewrote the forum (a delete) and as many
    /// posts were appended as were found, they are all that is new; otherwise (a post with a
    /// lower id that committed late, a delete) the whole forum is read the same way. The
    /// version kept is the one read with the posts, so a newer version reads them again.
    func read(_ forum: String) async throws {
        let kept = cache.withLock { c in
            c[forum].map { (count: $0.posts.count, last: $0.posts.last?.id ?? 0, appended: $0.appended, rewritten: $0.rewritten) }
        }
        if let kept {
            let found = try await read(forum, after: kept.last)
            if found.rewritten == kept.rewritten, found.appended - kept.appended == found.posts.count {
                // Appended in place (the kept list is not copied: a forum's refresh costs what
                // is new in it, not its length).
                let merged = cache.withLock { c -> Bool in
                    guard var had = c.removeValue(forKey: forum) else { return false }
                    defer { c[forum] = had }
                    // Another read moved it meanwhile: read it all.
                    guard had.posts.count == kept.count, had.appended == kept.appended, had.rewritten == kept.rewritten else { return false }
                    had.posts.append(contentsOf: found.posts)
                    had.authors.formUnion(found.posts.lazy.map(\.record.author))
                    (had.version, had.appended) = (max(had.version, found.version), found.appended)
                    return true
                }
                if merged { return }
            }
        }
        let all = try await read(forum, after: 0)
        let entry = Cached(
            version: all.version, posts: all.posts, authors: Set(all.posts.map(\.record.author)), appended: all.appended,
            rewritten: all.rewritten)
        cache.withLock { c in
            if let had = c[forum], had.version > all.version { return }  // a newer read finished first
            c[forum] = entry
        }
    }

    /// `forum`'s channel row (zeros before its first write) and its posts with an id above
    /// `after`, in id order, from one snapshot.
    func read(_ forum: String, after: Int) async throws -> (version: UInt64, appended: Int, rewritten: Int, posts: [(id: Int, record: Post)]) {
        let rows = try await posts.client.query(
            """
            SELECT version, appended, rewritten, NULL::bigint, NULL::bytea FROM nt_channel WHERE name = $1 \
            UNION ALL (SELECT NULL, NULL, NULL, id, data FROM "\(posts.name)" WHERE forum = $2 AND id > $3 ORDER BY id)
            """, [Channel.forum(forum).name, forum, after])
        var (version, appended, rewritten) = (UInt64(0), 0, 0)
        var found: [(id: Int, record: Post)] = []
        found.reserveCapacity(rows.count)
        for i in 0..<rows.count {
            if let id = try rows.decodeIfPresent(i, 3, as: Int.self) {
                found.append((id, try Post(encodedFields: rows.decode(i, 4, as: [UInt8].self))))
            } else {
                version = UInt64(max(0, try rows.decode(i, 0, as: Int.self)))
                (appended, rewritten) = (try rows.decode(i, 1, as: Int.self), try rows.decode(i, 2, as: Int.self))
            }
        }
        return (version, appended, rewritten, found)
    }

    func posts(in forum: String) -> [(id: Int, record: Post)] { cache.withLock { $0[forum]?.posts ?? [] } }

    func hasPosts(by author: String, in forum: String) -> Bool { cache.withLock { $0[forum]?.authors.contains(author) ?? false } }

    var channels: SharedChannels {
        get throws {
            guard let s = shared.withLock({ $0 }) else { throw PostgresError(.client, "the board is not open") }
            return s
        }
    }

    func add(_ post: Post, _ action: ActionContext) async throws {
        // Committed (synchronous_commit: durable) before the answer, in a batch with the posts
        // made meanwhile; the forum's viewers on every backend hear of it at commit.
        let posts = posts
        try await channels.write { tx in
            try await posts.insert(post, in: tx.transaction)
            tx.notify(.forum(post.forum), appending: 1)
        }
    }

    func delete(_ id: Int, by author: String, _ action: ActionContext) async throws {
        let posts = posts
        try await channels.write { tx in
            guard let post = try await posts.get(id, in: tx.transaction), post.author == author else { return }
            try await posts.delete(id, in: tx.transaction)
            tx.notify(.forum(post.forum))
        }
    }
}

/// Runs a read on behalf of every caller that asked for one before it started: a caller returns
/// once a read that began after its call has finished (or throws that read's error). One read at
/// a time; callers that arrive meanwhile share the next one, which the earliest of them runs.
final class Coalescing: Sendable {
    struct State {
        var running = false
        var asked = 0
        var done = 0
        var waiting: [(ticket: Int, continuation: CheckedContinuation<Result<Bool, any Error>, Never>)] = []
    }
    let state = Mutex(State())

    func run(_ read: @Sendable () async throws -> Void) async throws {
        var (ticket, drive) = state.withLock { s -> (Int, Bool) in
            s.asked += 1
            if s.running { return (s.asked, false) }
            s.running = true
            return (s.asked, true)
        }
        while true {
            if drive {
                let upTo = state.withLock { $0.asked }
                var failure: (any Error)? = nil
                do { try await read() } catch { failure = error }
                let (due, next) = state.withLock { s in
                    s.done = upTo
                    let due = s.waiting.filter { $0.ticket <= upTo }.map(\.continuation)
                    s.waiting.removeAll { $0.ticket <= upTo }
                    // The next read is run by the earliest caller still waiting.
                    let next = s.waiting.isEmpty ? nil : s.waiting.removeFirst().continuation
                    if next == nil { s.running = false }
                    return (due, next)
                }
                for c in due { c.resume(returning: failure.map { .failure($0) } ?? .success(false)) }
                next?.resume(returning: .success(true))
                if let failure { throw failure }
                return
            }
            let outcome = await withCheckedContinuation { (c: CheckedContinuation<Result<Bool, any Error>, Never>) in
                let now: Result<Bool, any Error>? = state.withLock { s in
                    if s.done >= ticket { return .success(false) }
                    if !s.running {
                        s.running = true
                        return .success(true)
                    }
                    s.waiting.append((ticket, c))
                    return nil
                }
                if let now { c.resume(returning: now) }
            }
            switch outcome {
            case .failure(let error): throw error
            case .success(let driveNow):
                guard driveNow else { return }
                drive = true
                ticket = state.withLock { $0.asked }
            }
        }
    }
}
