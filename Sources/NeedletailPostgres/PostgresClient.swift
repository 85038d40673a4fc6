import NeedletailLoop
import NeedletailPOSIX
import Synchronization

/// A PostgreSQL client whose connections live on the event loops: each loop that queries
/// keeps its own small pool (`PostgresConfiguration.connectionsPerLoop`), its sockets in the
/// loop's epoll, so a query suspends the calling task and the loop serves others until the
/// answer is in; the task resumes on its loop. Nothing blocks a loop: connecting (DNS, TCP,
/// TLS, authentication) runs on a worker thread.
///
/// Queries are pipelined: concurrent queries on one loop share a connection without waiting
/// for each other's round trip. Statements are prepared on first use and then run by name;
/// parameters are always bound as typed values (`$1`, `$2`…), never spliced into the SQL.
///
/// Called from a task that is not on a loop (a test, set-up before the server starts), the
/// client uses a loop of its own, started on first use and stopped by `close()`.
///
/// ```swift
/// let db = PostgresClient(PostgresConfiguration("postgres://app@db/app"))
/// let rows = try await db.query("SELECT name FROM users WHERE id = $1", [id])
/// let name: String = try rows.decode(0, 0)
/// ```
public final class PostgresClient: Sendable {
    public let configuration: PostgresConfiguration
    private let state = Mutex(State())

    private struct State {
        /// Every loop with a pool of this client (to close them).
        var loops: [EventLoop] = []
        /// The loop for callers that are not on one.
        var ownLoop: LoopGroup?
        var closed = false
    }

    /// A client for `configuration` (no connection is made until the first query). Throws
    /// when the connection string cannot be parsed.
    public init(_ configuration: PostgresConfiguration) throws(PostgresError) {
        try configuration.validate()
        self.configuration = configuration
    }

    /// Runs `sql` with `parameters` bound to `$1`, `$2`… and returns its rows (or, for a
    /// command, the count in `affectedRows`). Fails with the server's SQLSTATE and message,
    /// or `.unavailable` / `.connectionLost` when the database cannot be reached.
    public func query(_ sql: String, _ parameters: [any PostgresBindable] = []) async throws(PostgresError) -> PostgresRows {
        let loop = try currentLoop()
        let result = await withUnsafeContinuation { (c: QueryContinuation) in
            if loop.isCurrentThread {
                self.start(on: loop, sql, parameters, c)
            } else {
                let job = UnsafeTransfer(c)
                loop.execute { self.start(on: loop, sql, parameters, job.value) }
            }
        }
        return try result.get()
    }

    /// Runs a command and returns how many rows it changed.
    @discardableResult
    public func execute(_ sql: String, _ parameters: [any PostgresBindable] = []) async throws(PostgresError) -> Int {
        try await query(sql, parameters).affectedRows
    }

    /// Runs `body` in a transaction on a connection of its own: committed when `body` returns,
    /// rolled back when it throws (its error is rethrown). A failed COMMIT throws (the
    /// transaction did not happen: SQLSTATE 40001 for a serialization failure).
    public func transaction<T: Sendable>(
        _ body: (PostgresTransaction) async throws -> T
    ) async throws -> T {
        let loop = try currentLoop()
        let handed = await withUnsafeContinuation { (c: UnsafeContinuation<Result<UnsafeTransfer<PostgresConnection>, PostgresError>, Never>) in
            let take: @Sendable () -> Void = {
                self.pool(on: loop).exclusive { result in c.resume(returning: result.map { UnsafeTransfer($0) }) }
            }
            if loop.isCurrentThread { take() } else { loop.execute(take) }
        }
        let connection = try handed.get()
        let tx = PostgresTransaction(loop: loop, connection: connection)
        defer {
            let release: @Sendable () -> Void = { self.pool(on: loop).release(connection.value) }
            if loop.isCurrentThread { release() } else { loop.execute(release) }
        }
        _ = try await tx.query("BEGIN")
        let value: T
        do {
            value = try await body(tx)
        } catch {
            _ = try? await tx.query("ROLLBACK")
            throw error
        }
        _ = try await tx.query("COMMIT")
        return value
    }

    /// Closes every connection of every loop; queries in flight fail with `.client`, and so
    /// does every later query.
    public func close() {
        let (loops, own) = state.withLock { s in
            s.closed = true
            let taken = (s.loops, s.ownLoop)
            s.loops = []
            s.ownLoop = nil
            return taken
        }
        for loop in loops {
            loop.execute {
                (loop.removeLocal(for: self) as? PostgresPool)?.close()
            }
        }
        own?.shutdown(grace: 0)
    }

    // MARK: On the loop

    func currentLoop() throws(PostgresError) -> EventLoop {
        if let loop = EventLoop.current { return loop }
        let made: Result<EventLoop, PostgresError> = state.withLock { s in
            if s.closed { return .failure(PostgresError(.client, "the client is closed")) }
            if let own = s.ownLoop { return .success(own.loops[0]) }
            do {
                let group = try LoopGroup(count: 1)
                try group.start { _ in }
                s.ownLoop = group
                return .success(group.loops[0])
            } catch {
                return .failure(PostgresError(.client, "cannot start the client's own loop: \(error)"))
            }
        }
        return try made.get()
    }

    /// This client's pool on `loop` (call on the loop's thread).
    func pool(on loop: EventLoop) -> PostgresPool {
        loop.local(for: self) {
            state.withLock { $0.loops.append(loop) }
            return PostgresPool(loop: loop, configuration: configuration)
        }
    }

    private func start(on loop: EventLoop, _ sql: String, _ parameters: [any PostgresBindable], _ c: QueryContinuation) {
        if state.withLock({ $0.closed }) {
            c.resume(returning: .failure(PostgresError(.client, "the client is closed")))
            return
        }
        let pool = pool(on: loop)
        if let connection = pool.sharedNow() {
            connection.send(sql, parameters, c)
            return
        }
        let job = UnsafeTransfer(c)
        pool.shared { result in
            switch result {
            case .success(let connection): connection.send(sql, parameters, job.value)
            case .failure(let error): job.value.resume(returning: .failure(error))
            }
        }
    }
}

/// The statements of one transaction (`PostgresClient.transaction`), all on its connection.
/// Use it only inside the transaction's body.
public struct PostgresTransaction: Sendable {
    let loop: EventLoop
    let connection: UnsafeTransfer<PostgresConnection>

    /// Runs `sql` in the transaction. After a failed statement the transaction is aborted:
    /// later statements fail (SQLSTATE 25P02) and it is rolled back.
    public func query(_ sql: String, _ parameters: [any PostgresBindable] = []) async throws(PostgresError) -> PostgresRows {
        let result = await withUnsafeContinuation { (c: QueryContinuation) in
            if loop.isCurrentThread {
                connection.value.send(sql, parameters, c)
            } else {
                let job = UnsafeTransfer(c)
                let connection = connection
                loop.execute { connection.value.send(sql, parameters, job.value) }
            }
        }
        return try result.get()
    }

    /// Runs a command in the transaction and returns how many rows it changed.
    @discardableResult
    public func execute(_ sql: String, _ parameters: [any PostgresBindable] = []) async throws(PostgresError) -> Int {
        try await query(sql, parameters).affectedRows
    }
}
