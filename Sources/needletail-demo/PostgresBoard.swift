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
    }

    let names: [String]
    let posts: PostgresTable<Post>
    let cache = Mutex<[String: Cached]>([:])
    let shared = Mutex<SharedChannels?>(nil)

    init(names: [String], posts: PostgresTable<Post>) {
        (self.names, self.posts) = (names, posts)
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

    /// Reads `forum`'s posts again. The channel's version is read first, the posts after: the
    /// list is at least as new as the version it is kept with, and a newer version reads it again.
    func refresh(_ forum: String) async throws {
        let row = try await posts.client.query("SELECT version FROM nt_channel WHERE name = $1", [Channel.forum(forum).name])
        let version = row.count == 1 ? UInt64(max(0, try row.decode(0, 0, as: Int.self))) : 0
        let list = try await posts.lookup(\Post.forum, forum, newestFirst: false)
        let entry = Cached(version: version, posts: list, authors: Set(list.map(\.record.author)))
        cache.withLock { c in
            if let had = c[forum], had.version > version { return }  // a newer read finished first
            c[forum] = entry
        }
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
        // Committed (synchronous_commit: durable) before the answer; the forum's viewers on
        // every backend hear of it at commit.
        try await channels.write { tx in
            try await posts.insert(post, in: tx.transaction)
            try await tx.notify(.forum(post.forum))
        }
    }

    func delete(_ id: Int, by author: String, _ action: ActionContext) async throws {
        try await channels.write { tx in
            guard let post = try await posts.get(id, in: tx.transaction), post.author == author else { return }
            try await posts.delete(id, in: tx.transaction)
            try await tx.notify(.forum(post.forum))
        }
    }
}
