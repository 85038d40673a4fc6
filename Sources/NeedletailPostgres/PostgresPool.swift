import CPostgres
import Glibc
import NeedletailLoop
import NeedletailPOSIX

/// One loop's connections to the database (at most `connectionsPerLoop`), made on demand.
/// Queries share the least busy connection (pipelined); a transaction takes one for itself.
/// A failed attempt to connect waits before the next (100 ms, doubling up to the maximum);
/// meanwhile queries fail at once with the last reason. Loop-confined.
final class PostgresPool {
    unowned let loop: EventLoop
    let configuration: PostgresConfiguration
    private var connections: [PostgresConnection] = []
    private var opening = 0
    private enum Want { case shared, exclusive }
    private var waiters: [(want: Want, handed: Handed)] = []
    private var backoff = 0
    private var retryAt: UInt64 = 0
    private var lastFailure: PostgresError?
    private(set) var isClosed = false
    /// What a caller waiting for a connection is given (on the loop's thread).
    typealias Handed = (Result<PostgresConnection, PostgresError>) -> Void

    init(loop: EventLoop, configuration: PostgresConfiguration) {
        self.loop = loop
        self.configuration = configuration
    }

    var connectionCount: Int { connections.count }

    /// The least busy connection not held by a transaction, if one is open. When it already
    /// has queries in flight and the pool may grow, another connection is opened for later.
    func sharedNow() -> PostgresConnection? {
        guard let best = leastBusy() else { return nil }
        if best.inFlight > 0 && canOpen && opening == 0 && !inBackoff { open() }
        return best
    }

    /// A connection for one query: `sharedNow()`, or the first one opened.
    func shared(_ c: @escaping Handed) {
        if let best = sharedNow() {
            c(.success(best))
            return
        }
        wait(.shared, c)
    }

    /// A connection for a transaction, held until `release`.
    func exclusive(_ c: @escaping Handed) {
        if let idle = connections.first(where: { !$0.reserved && $0.inFlight == 0 }) {
            idle.reserved = true
            c(.success(idle))
            return
        }
        wait(.exclusive, c)
    }

    /// Gives back a transaction's connection.
    func release(_ connection: PostgresConnection) {
        connection.reserved = false
        serveWaiters()
    }

    private var canOpen: Bool { !isClosed && connections.count + opening < max(1, configuration.connectionsPerLoop) }

    private func leastBusy() -> PostgresConnection? {
        var best: PostgresConnection?
        for c in connections where !c.reserved && !c.isBroken {
            if best == nil || c.inFlight < best!.inFlight { best = c }
        }
        return best
    }

    private var inBackoff: Bool { lastFailure != nil && nanosecondsSinceBoot() < retryAt }

    private func wait(_ want: Want, _ c: @escaping Handed) {
        if isClosed {
            c(.failure(PostgresError(.client, "the client is closed")))
            return
        }
        if connections.isEmpty && opening == 0, let failure = lastFailure {
            let now = nanosecondsSinceBoot()
            if now < retryAt {
                // Fail fast while the database is known to be down, instead of queueing.
                let ms = (retryAt - now) / 1_000_000
                c(.failure(PostgresError(.unavailable, "\(failure.message) (next attempt in \(ms) ms)")))
                return
            }
        }
        waiters.append((want, c))
        if canOpen && opening < waiters.count { open() }
    }

    private func open() {
        opening += 1
        let configuration = configuration
        let loop = loop
        let box = UnsafeTransfer(self)
        BlockingPool.shared.submit {
            let result = PostgresConnector.connect(configuration)
            loop.execute { box.value.opened(result) }
        }
    }

    private func opened(_ result: Result<MadeConnection, PostgresError>) {
        opening -= 1
        switch result {
        case .success(let made):
            if isClosed {
                PQfinish(made.pointer)
                return
            }
            do {
                let connection = try PostgresConnection(loop: loop, connection: made.pointer)
                connection.onIdle = { [unowned self] _ in serveWaiters() }
                connection.onBroken = { [unowned self] broken in
                    connections.removeAll { $0 === broken }
                    serveWaiters()
                }
                connections.append(connection)
                backoff = 0
                lastFailure = nil
                serveWaiters()
            } catch {
                failed(error)
            }
        case .failure(let error):
            failed(error)
        }
    }

    private func failed(_ error: PostgresError) {
        lastFailure = error
        backoff = backoff == 0 ? 100 : min(backoff * 2, configuration.maxBackoffMilliseconds)
        retryAt = nanosecondsSinceBoot() + UInt64(backoff) * 1_000_000
        guard opening == 0 else { return }
        // Nobody else is coming: those who wait and have no connection to share fail now.
        let waiting = waiters
        waiters.removeAll()
        for w in waiting {
            if w.want == .shared, let best = leastBusy() {
                w.handed(.success(best))
            } else {
                w.handed(.failure(error))
            }
        }
    }

    private func serveWaiters() {
        while !waiters.isEmpty {
            let w = waiters[0]
            switch w.want {
            case .shared:
                guard let best = leastBusy() else { return openIfNeeded() }
                waiters.removeFirst()
                w.handed(.success(best))
            case .exclusive:
                guard let idle = connections.first(where: { !$0.reserved && $0.inFlight == 0 && !$0.isBroken }) else {
                    return openIfNeeded()
                }
                waiters.removeFirst()
                idle.reserved = true
                w.handed(.success(idle))
            }
        }
    }

    private func openIfNeeded() {
        if opening == 0 && canOpen { open() }
    }

    /// Closes every connection; queries in flight and waiting fail.
    func close() {
        isClosed = true
        for c in connections { c.close() }
        connections.removeAll()
        let waiting = waiters
        waiters.removeAll()
        for w in waiting { w.handed(.failure(PostgresError(.client, "the client is closed"))) }
    }
}

/// Moves a loop-confined object through a `@Sendable` closure that runs on the same loop.
struct UnsafeTransfer<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

func nanosecondsSinceBoot() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}
