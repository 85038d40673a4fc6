import NeedletailLive
import NeedletailLoop
import NeedletailPostgres
import Synchronization

/// Live channels shared by several backends through PostgreSQL.
///
/// Each channel's version is a row of `nt_channel`, advanced inside the transaction that
/// writes what the channel shows (`write { tx in …; try await tx.notify(.forum(f)) }`), which
/// also sends `pg_notify('nt_channels', "VERSION NAME")`: PostgreSQL delivers it when, and only
/// when, the transaction commits, so a viewer hears of a change exactly when it is visible.
/// Every backend LISTENs on `nt_channels` and advances its own `Channels` (made with
/// `ordered: true`) to the versions it hears, which answers its parked polls and event
/// streams. The versions are the same on every backend, so a viewer who goes on at another
/// backend neither misses nor repeats an update.
///
/// `beforeWake` runs before a backend's viewers are woken for a channel's new version: where an
/// app keeps a cache of what the channel shows (the demo's board keeps each forum's posts), it
/// reads it again there. A failure is retried (every half second) until it succeeds, since
/// waking the viewers on the old data would lose the update for them.
///
/// When the listening connection is lost, the listener reconnects and this reads every
/// channel's version again: a change made meanwhile (its notification is gone) is seen then.
public final class SharedChannels: Sendable {
    /// The PostgreSQL channel the notifications go to.
    public static let notificationChannel = "nt_channels"
    /// The version of `nt_channel`'s layout.
    public static let schemaVersion = 1

    public let client: PostgresClient
    /// The channels this backend's pages show and wait on.
    public let channels: Channels
    let beforeWake: (@Sendable (Channel, UInt64) async throws -> Void)?
    let onError: @Sendable (String) -> Void
    let listener = Mutex<PostgresListener?>(nil)
    let closed = Atomic<Bool>(false)

    init(
        client: PostgresClient, channels: Channels, beforeWake: (@Sendable (Channel, UInt64) async throws -> Void)?,
        onError: @escaping @Sendable (String) -> Void
    ) {
        (self.client, self.channels, self.beforeWake, self.onError) = (client, channels, beforeWake, onError)
    }

    /// Makes `nt_channel` if needed, starts listening, and brings `channels` (which must be
    /// ordered) to the database's versions before returning.
    public static func open(
        on client: PostgresClient, channels: Channels,
        beforeWake: (@Sendable (Channel, UInt64) async throws -> Void)? = nil,
        onError: @escaping @Sendable (String) -> Void
    ) async throws -> SharedChannels {
        guard channels.isOrdered else {
            throw PostgresError(.client, "SharedChannels needs Channels(ordered: true): their versions come from the database")
        }
        try await client.makeSchema(
            "nt_channel", version: schemaVersion, columns: "name,version",
            create: ["CREATE TABLE nt_channel (name text PRIMARY KEY, version bigint NOT NULL)"])
        let shared = SharedChannels(client: client, channels: channels, beforeWake: beforeWake, onError: onError)
        let heard = try client.listen([notificationChannel]) { [weak shared] event in shared?.heard(event) }
        shared.listener.withLock { $0 = heard }
        // The listener catches up as well once it listens (a commit between this read and its
        // LISTEN would otherwise go unheard); this read makes the pages right from the start.
        try await shared.catchUp()
        return shared
    }

    /// Stops listening (the versions stay where they are).
    public func close() {
        closed.store(true, ordering: .relaxed)
        listener.withLock { $0.take() }?.close()
    }

    /// Runs `body` in a transaction; the channels it notifies are advanced on this backend as
    /// soon as it has committed (the others hear of it from PostgreSQL).
    @discardableResult
    public func write<T: Sendable>(_ body: (SharedTransaction) async throws -> T) async throws -> T {
        let notified = Notified()
        let value = try await client.transaction { tx in try await body(SharedTransaction(transaction: tx, notified: notified)) }
        for (channel, version) in notified.taken() { await changed(channel, to: version) }
        return value
    }

    /// What the listener hears (on its loop).
    func heard(_ event: PostgresListenerEvent) {
        guard let loop = EventLoop.current else { return }
        switch event {
        case .notification(_, let payload):
            guard let space = payload.firstIndex(of: " "), let version = UInt64(payload[..<space]) else {
                onError("a notification on \(Self.notificationChannel) that is not \"VERSION NAME\": \(payload.prefix(80))")
                return
            }
            let channel = Channel(String(payload[payload.index(after: space)...]))
            loop.startTask { await self.changed(channel, to: version) }
        case .listening(let afterLoss):
            if afterLoss { onError("listening on \(Self.notificationChannel) again: reading every channel's version") }
            loop.startTask { await self.catchUpRetrying() }
        }
    }

    /// Reads every channel's version and advances to it.
    func catchUp() async throws {
        let rows = try await client.query("SELECT name, version FROM nt_channel")
        for row in 0..<rows.count {
            let name = try rows.decode(row, 0, as: String.self)
            let version = try rows.decode(row, 1, as: Int.self)
            await changed(Channel(name), to: UInt64(max(version, 0)))
        }
    }

    func catchUpRetrying() async {
        _ = await retrying("read the channels' versions") { try await catchUp() }
    }

    /// `channel` is at `version` in the database: refresh the app's cache, then wake viewers.
    func changed(_ channel: Channel, to version: UInt64) async {
        guard version > channels.version(channel) else { return }
        if let beforeWake {
            guard await retrying("refresh \(channel) for version \(version)", { try await beforeWake(channel, version) }) else { return }
        }
        channels.advance(channel, to: version)
    }

    /// Runs `body` until it succeeds (true), every 500 ms, logging each failure; false once
    /// closed.
    func retrying(_ what: String, _ body: () async throws -> Void) async -> Bool {
        while !closed.load(ordering: .relaxed) {
            do {
                try await body()
                return true
            } catch {
                onError("cannot \(what) (trying again): \(error)")
                try? await Waiting.sleep(milliseconds: 500)
            }
        }
        return false
    }
}

/// The transaction of `SharedChannels.write`.
public struct SharedTransaction: Sendable {
    /// The transaction itself, for the statements that write.
    public let transaction: PostgresTransaction
    let notified: Notified

    /// Advances `channel` in this transaction and tells every backend when it commits; returns
    /// the channel's new version.
    @discardableResult
    public func notify(_ channel: Channel) async throws -> UInt64 {
        let rows = try await transaction.query(
            """
            WITH v AS (INSERT INTO nt_channel (name, version) VALUES ($1, 1) \
            ON CONFLICT (name) DO UPDATE SET version = nt_channel.version + 1 RETURNING version) \
            SELECT version, pg_notify('\(SharedChannels.notificationChannel)', version || ' ' || $1) FROM v
            """, [channel.name])
        let version = UInt64(max(try rows.decode(0, 0, as: Int.self), 0))
        notified.add(channel, version)
        return version
    }
}

/// The channels a transaction advanced, to advance here once it commits.
final class Notified: Sendable {
    let list = Mutex<[(Channel, UInt64)]>([])
    func add(_ channel: Channel, _ version: UInt64) { list.withLock { $0.append((channel, version)) } }
    func taken() -> [(Channel, UInt64)] { list.withLock { l in defer { l = [] }; return l } }
}
