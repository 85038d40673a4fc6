import CPostgres
import NeedletailLoop
import NeedletailPOSIX
import Synchronization

/// What a `PostgresListener` hears.
public enum PostgresListenerEvent: Sendable, Equatable {
    /// A `NOTIFY` (or `pg_notify`) on one of its channels, delivered after its transaction
    /// committed.
    case notification(channel: String, payload: String)
    /// The listener is listening on every channel. `afterLoss` is true when it had lost its
    /// connection before: notifications sent meanwhile are gone (PostgreSQL keeps none for a
    /// listener that is not connected), so treat every channel as changed.
    case listening(afterLoss: Bool)
}

/// A connection of its own that `LISTEN`s on some channels and reports what it hears, on the
/// loop it was made on (`PostgresClient.listen`). It reconnects by itself with backoff when the
/// connection breaks, listens again, and says so (`.listening(afterLoss: true)`). It listens
/// until `close()`.
public final class PostgresListener: Sendable {
    let loop: EventLoop
    private let core: UnsafeTransfer<ListenerCore>

    init(loop: EventLoop, core: ListenerCore) {
        self.loop = loop
        self.core = UnsafeTransfer(core)
    }

    /// Stops listening and closes the connection (no event after this returns on the loop).
    public func close() {
        let core = core
        if loop.isCurrentThread { core.value.close() } else { loop.execute { core.value.close() } }
    }
}

extension PostgresClient {
    /// Starts listening on `channels` (names as given, case kept) on a connection of its own;
    /// `onEvent` runs on the loop the listener lives on (the caller's, or the client's own).
    public func listen(
        _ channels: [String], _ onEvent: @escaping @Sendable (PostgresListenerEvent) -> Void
    ) throws(PostgresError) -> PostgresListener {
        guard !channels.isEmpty else { throw PostgresError(.client, "listen needs at least one channel") }
        for c in channels where c.isEmpty || c.utf8.count > 63 || c.utf8.contains(0) {
            throw PostgresError(.client, "bad channel name \"\(c)\" (1 to 63 bytes)")
        }
        let loop = try currentLoop()
        let core = ListenerCore(loop: loop, configuration: configuration, channels: channels, onEvent: onEvent)
        let transfer = UnsafeTransfer(core)
        if loop.isCurrentThread { core.start() } else { loop.execute { transfer.value.start() } }
        return PostgresListener(loop: loop, core: core)
    }

    /// Sends `payload` to the listeners of `channel` (`pg_notify`): delivered when the
    /// statement commits. Payloads are limited to 7,999 bytes by the server.
    public func notify(_ channel: String, _ payload: String = "") async throws(PostgresError) {
        try checkPayload(payload)
        _ = try await query("SELECT pg_notify($1, $2)", [channel, payload])
    }
}

extension PostgresTransaction {
    /// `PostgresClient.notify` inside the transaction: listeners hear it exactly when the
    /// transaction commits, and never if it rolls back.
    public func notify(_ channel: String, _ payload: String = "") async throws(PostgresError) {
        try checkPayload(payload)
        _ = try await query("SELECT pg_notify($1, $2)", [channel, payload])
    }
}

private func checkPayload(_ payload: String) throws(PostgresError) {
    guard payload.utf8.count < 8000 else {
        throw PostgresError(.client, "a notification payload must be under 8,000 bytes (send an id and read the rest)")
    }
}

/// The listener's state on its loop: connect (on a worker thread), LISTEN, hear, and again
/// after a loss. Loop-confined.
final class ListenerCore {
    unowned let loop: EventLoop
    let configuration: PostgresConfiguration
    let channels: [String]
    let onEvent: @Sendable (PostgresListenerEvent) -> Void
    private var connection: PostgresConnection?
    private var lost = false
    private var closed = false
    private var backoff = 0

    init(loop: EventLoop, configuration: PostgresConfiguration, channels: [String], onEvent: @escaping @Sendable (PostgresListenerEvent) -> Void) {
        self.loop = loop
        self.configuration = configuration
        self.channels = channels
        self.onEvent = onEvent
    }

    func start() {
        guard !closed else { return }
        let configuration = configuration
        let loop = loop
        let me = UnsafeTransfer(self)
        BlockingPool.shared.submit {
            let made = PostgresConnector.connect(configuration)
            loop.execute { me.value.connected(made) }
        }
    }

    private func connected(_ made: Result<MadeConnection, PostgresError>) {
        guard !closed else {
            if case .success(let m) = made { PQfinish(m.pointer) }
            return
        }
        switch made {
        case .failure:
            retryLater()
        case .success(let m):
            guard let c = try? PostgresConnection(loop: loop, connection: m.pointer) else { return retryLater() }
            connection = c
            c.onNotification = { [onEvent] channel, payload in onEvent(.notification(channel: channel, payload: payload)) }
            c.onBroken = { [self] _ in
                connection = nil
                lost = true
                retryLater()
            }
            // One LISTEN per channel (quoted: names keep their case); the last answer tells
            // that every one is in place, answers coming in order.
            var failed = false
            for (i, channel) in channels.enumerated() {
                let sql = "LISTEN \"" + channel.replacing("\"", with: "\"\"") + "\""
                c.send(sql, [], prepare: false, answer: { [self, unowned c] result in
                    if case .failure = result { failed = true }
                    guard i == channels.count - 1, !closed else { return }
                    if failed {
                        c.breakConnection("LISTEN failed")
                    } else {
                        backoff = 0
                        onEvent(.listening(afterLoss: lost))
                    }
                })
            }
        }
    }

    private func retryLater() {
        guard !closed else { return }
        backoff = backoff == 0 ? 100 : min(backoff * 2, configuration.maxBackoffMilliseconds)
        _ = loop.schedule(after: backoff) { [self] in start() }
    }

    func close() {
        closed = true
        connection?.close()
        connection = nil
    }
}
