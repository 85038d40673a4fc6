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
/// reads it again there. So that the read costs what changed, not what the channel shows, the
/// row keeps two counters beside the version, advanced in the same statement: `appended`, the
/// rows announced with `notify(_:appending:)` in all, and `rewritten`, the writes announced
/// with plain `notify(_:)` (any other change). A reader who kept what it read at some counters
/// reads, in one statement (one snapshot), the row and the rows after the newest it kept: when
/// `rewritten` is the same and `appended` grew by as many rows as it found, it holds them all;
/// otherwise (a row that committed late with a lower id, a delete) it reads everything. A failure is retried (every half second) until it succeeds, since
/// waking the viewers on the old data would lose the update for them.
///
/// When the listening connection is lost, the listener reconnects and this reads every
/// channel's version again: a change made meanwhile (its notification is gone) is seen then.
public final class SharedChannels: Sendable {
    /// The PostgreSQL channel the notifications go to.
    public static let notificationChannel = "nt_channels"
    /// The version of `nt_channel`'s layout.
    public static let schemaVersion = 2

    public let client: PostgresClient
    /// The channels this backend's pages show and wait on.
    public let channels: Channels
    let beforeWake: (@Sendable (Channel, UInt64) async throws -> Void)?
    let onError: @Sendable (String) -> Void
    let listener = Mutex<PostgresListener?>(nil)
    let closed = Atomic<Bool>(false)
    let batches = WriteBatches()

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
            "nt_channel", version: schemaVersion, columns: "name,version,appended,rewritten",
            create: [
                """
                CREATE TABLE nt_channel (name text PRIMARY KEY, version bigint NOT NULL, \
                appended bigint NOT NULL DEFAULT 0, rewritten bigint NOT NULL DEFAULT 0)
                """
            ],
            upgrade: [
                2: [
                    """
                    ALTER TABLE nt_channel ADD COLUMN appended bigint NOT NULL DEFAULT 0, \
                    ADD COLUMN rewritten bigint NOT NULL DEFAULT 0
                    """
                ]
            ])
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
    ///
    /// Group commit: writes that arrive while another is committing wait for it, then run
    /// together in one transaction, their bodies at once (their statements pipelined on the
    /// connection), each channel they notify advanced once at its end (and only there: the channel's row is locked from then until the commit, so
    /// the commits of other backends queue on it for one commit, not for every write). When
    /// one of the bodies throws, that write fails with its error, the transaction is rolled
    /// back and the others run again without it: the outcome each would have had had they
    /// committed one by one in some order. A body may therefore run more than once, must leave
    /// effects outside the database to the code after `write`, and must not rely on the order
    /// of its statements against another write's (each body's own run in its order). A failure after the
    /// bodies (advancing the channels, the commit) is every write's.
    @discardableResult
    public func write<T: Sendable>(_ body: @escaping @Sendable (SharedTransaction) async throws -> T) async throws -> T {
        let value = Mutex<T?>(nil)
        let pending = PendingWrite { tx in
            let v = try await body(tx)
            value.withLock { $0 = v }
        }
        try await batches.submit(pending, to: self)
        guard let v = value.withLock({ $0.take() }) else { throw PostgresError(.client, "a write committed without its value") }
        return v
    }

    /// Runs `writes` in one transaction, their bodies at once (each body's statements in its
    /// order, the bodies' pipelined on the connection: a batch costs about one round trip, not
    /// one per write); the channels they notified with their new versions, or the bodies that
    /// failed of their own (nothing of any of them is committed). A statement that fails
    /// aborts the transaction, and the statements of other bodies queued behind it fail with
    /// SQLSTATE 25P02: those bodies did not fail of their own and run again.
    func commit(_ writes: [PendingWrite]) async -> Result<[(Channel, UInt64)], WriteFailure> {
        let notified = Notified()
        let failed = Mutex<[(index: Int, error: any Error)]>([])
        do {
            let versions = try await client.transaction { tx in
                let shared = SharedTransaction(transaction: tx, notified: notified)
                if writes.count == 1 {
                    do { try await writes[0].run(shared) } catch { failed.withLock { $0.append((0, error)) } }
                } else {
                    let errors = await withTaskGroup(of: (Int, (any Error)?).self) { group in
                        for (i, w) in writes.enumerated() {
                            group.addTask {
                                do { try await w.run(shared) } catch { return (i, error) }
                                return (i, nil)
                            }
                        }
                        var errors: [(index: Int, error: any Error)] = []
                        for await (i, error) in group { if let error { errors.append((i, error)) } }
                        return errors
                    }
                    failed.withLock { $0 = errors }
                }
                if !failed.withLock({ $0.isEmpty }) { throw BodiesFailed() }  // rolled back; answered below
                return try await advance(notified.channels(), in: tx)
            }
            return .success(versions)
        } catch {
            let bodies = failed.withLock { $0 }
            if bodies.isEmpty { return .failure(.commit(error)) }
            let own = bodies.filter { ($0.error as? PostgresError)?.sqlState != Self.transactionAborted }
            // (All of them 25P02 would mean a body swallowed the statement that failed first:
            // the first of them in the batch's order answers for it.)
            return .failure(.bodies(own.isEmpty ? Array(bodies.sorted { $0.index < $1.index }.prefix(1)) : own))
        }
    }

    struct BodiesFailed: Error {}

    /// SQLSTATE in_failed_sql_transaction: a statement after another failed in the transaction.
    static let transactionAborted = "25P02"

    /// Advances each of `channels` by one in `tx`, in name order (two backends' transactions
    /// lock the rows in the same order: no deadlock), with its counters and the notification
    /// every backend hears at commit; their new versions.
    func advance(_ channels: [Notified.Change], in tx: PostgresTransaction) async throws -> [(Channel, UInt64)] {
        var versions: [(Channel, UInt64)] = []
        for (channel, appended, rewritten) in channels {
            let rows = try await tx.query(
                """
                WITH v AS (INSERT INTO nt_channel (name, version, appended, rewritten) VALUES ($1, 1, $2, $3) \
                ON CONFLICT (name) DO UPDATE SET version = nt_channel.version + 1, \
                appended = nt_channel.appended + $2, rewritten = nt_channel.rewritten + $3 RETURNING version) \
                SELECT version, pg_notify('\(SharedChannels.notificationChannel)', version || ' ' || $1) FROM v
                """, [channel.name, appended, rewritten])
            versions.append((channel, UInt64(max(try rows.decode(0, 0, as: Int.self), 0))))
        }
        return versions
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

    /// Advances `channel` when this transaction commits (at its end, once however many of the
    /// writes sharing it notify it) and tells every backend then; the new version is this
    /// backend's `channels.version(channel)` once `write` has returned. The change may be any
    /// (the channel's `rewritten` counter grows by one): readers of the channel read all it
    /// shows again.
    public func notify(_ channel: Channel) {
        notified.add(channel, appended: 0, rewritten: 1)
    }

    /// As `notify(_:)`, for a write that only added `rows` rows after every row the channel
    /// shows (the `appended` counter grows by `rows`): readers read only the rows after the
    /// newest they kept.
    public func notify(_ channel: Channel, appending rows: Int) {
        notified.add(channel, appended: max(rows, 0), rewritten: 0)
    }
}

/// The channels a transaction's writes notify, each once, with what their writes announced.
final class Notified: Sendable {
    typealias Change = (channel: Channel, appended: Int, rewritten: Int)
    let changes = Mutex<[String: (appended: Int, rewritten: Int)]>([:])
    func add(_ channel: Channel, appended: Int, rewritten: Int) {
        changes.withLock { c in
            let had = c[channel.name] ?? (0, 0)
            c[channel.name] = (had.appended + appended, had.rewritten + rewritten)
        }
    }
    /// In name order.
    func channels() -> [Change] {
        changes.withLock { c in c.sorted { $0.key < $1.key }.map { (Channel($0.key), $0.value.appended, $0.value.rewritten) } }
    }
}

/// Why a batch of writes failed: the bodies of the writes at some indexes (the others run
/// again without them), or what came after the bodies (every write's error).
enum WriteFailure: Error {
    case bodies([(index: Int, error: any Error)])
    case commit(any Error)
}

/// A write waiting for its batch.
final class PendingWrite: Sendable {
    let run: @Sendable (SharedTransaction) async throws -> Void
    private let state = Mutex<(result: Result<Void, any Error>?, waiting: UnsafeContinuation<Result<Void, any Error>, Never>?)>((nil, nil))

    init(_ run: @escaping @Sendable (SharedTransaction) async throws -> Void) { self.run = run }

    func finish(_ result: Result<Void, any Error>) {
        let waiting = state.withLock { s in
            s.result = result
            return s.waiting.take()
        }
        waiting?.resume(returning: result)
    }

    func outcome() async -> Result<Void, any Error> {
        await withUnsafeContinuation { c in
            let done = state.withLock { s in
                if s.result == nil { s.waiting = c }
                return s.result
            }
            if let done { c.resume(returning: done) }
        }
    }
}

/// The writes of one `SharedChannels`: those that arrive while a batch commits make the next.
/// One batch at a time (two at once made smaller batches whose commits still queued on the
/// channel's row: half the posts per second). The batches run in a task of their own, on the
/// loop of the write that started them, so that no write's cancellation reaches the others'.
final class WriteBatches: Sendable {
    private let state = Mutex<(pending: [PendingWrite], running: Bool)>(([], false))

    func submit(_ write: PendingWrite, to shared: SharedChannels) async throws {
        let start = state.withLock { s in
            s.pending.append(write)
            if s.running { return false }
            s.running = true
            return true
        }
        if start { Self.spawn { await self.drain(shared) } }
        try await write.outcome().get()
    }

    /// Runs `work` in a task of its own on this loop (off the loops, a tool's or a test's
    /// caller: a plain `Task`).
    static func spawn(_ work: @escaping @Sendable () async -> Void) {
        if let loop = EventLoop.current { loop.startTask(work) } else { Task { await work() } }
    }

    func drain(_ shared: SharedChannels) async {
        while true {
            var batch = state.withLock { s in
                if s.pending.isEmpty { s.running = false }
                defer { s.pending = [] }
                return s.pending
            }
            if batch.isEmpty { return }
            while !batch.isEmpty {
                switch await shared.commit(batch) {
                case .success(let versions):
                    // This backend's viewers and cache catch up (and then the writers return)
                    // while the next batch runs: its bodies need not wait for the refresh.
                    let done = batch
                    Self.spawn {
                        for (channel, version) in versions { await shared.changed(channel, to: version) }
                        for w in done { w.finish(.success(())) }
                    }
                    batch = []
                case .failure(.commit(let error)):
                    for w in batch { w.finish(.failure(error)) }
                    batch = []
                case .failure(.bodies(let failed)):
                    for (index, error) in failed { batch[index].finish(.failure(error)) }
                    let gone = Set(failed.map(\.index))
                    batch = batch.indices.filter { !gone.contains($0) }.map { batch[$0] }
                }
            }
        }
    }
}
