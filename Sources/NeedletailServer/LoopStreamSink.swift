import NeedletailBytes
import NeedletailLoop
import NeedletailWeb
import Synchronization

/// The codec end of a `ResponseStream`: chunks written on any thread are handed to the
/// connection's loop, where the codec's `frame` closure writes them (chunked HTTP, raw HTTP/1.0,
/// FastCGI STDOUT records) and `end` closes the body.
///
/// `@unchecked Sendable`: the connection and the two closures are used only inside
/// loop tasks (`executeSoonOrNow`: at once when already on the loop's thread), i.e. on the
/// loop's thread; the flags shared across threads are atomics.
final class LoopStreamSink: ResponseStreamSink, @unchecked Sendable {
    private let loop: EventLoop
    private let connection: Connection
    private let frame: (Connection, Chunks) -> Void
    private let end: (Connection) -> Void
    private let finished = Atomic<Bool>(false)
    private let cancelled = Atomic<Bool>(false)

    /// Made on the loop's thread by a codec.
    init(connection: Connection, frame: @escaping (Connection, Chunks) -> Void, end: @escaping (Connection) -> Void) {
        loop = connection.loop
        self.connection = connection
        self.frame = frame
        self.end = end
    }

    var isCancelled: Bool {
        cancelled.load(ordering: .acquiring) || finished.load(ordering: .acquiring)
    }

    /// The connection closed or the request was aborted (called on the loop).
    func cancel() { cancelled.store(true, ordering: .releasing) }

    func write(_ transfer: consuming ChunksTransfer) {
        guard !isCancelled else { return }
        // On the loop's thread the chunks are taken over (so that their buffer can be recycled
        // once copied); from another thread they travel in the task.
        if loop.runsNow(for: connection) { send(transfer.take(), finishing: false); return }
        loop.execute { [self, transfer] in send(transfer.chunks, finishing: false) }
    }

    func finish(after last: consuming ChunksTransfer) {
        guard !cancelled.load(ordering: .acquiring), !finished.exchange(true, ordering: .acquiringAndReleasing) else { return }
        if loop.runsNow(for: connection) { send(last.take(), finishing: true); return }
        loop.execute { [self, last] in send(last.chunks, finishing: true) }
    }

    /// On the loop: frames `chunks` (and the end of the body when `finishing`), then writes.
    private func send(_ chunks: consuming Chunks, finishing: Bool) {
        guard !connection.isClosed, !cancelled.load(ordering: .acquiring) else { return }
        if !chunks.isEmpty { frame(connection, chunks) }
        // Short chunks were copied into the connection's queue: their buffer goes back to this
        // thread's pool when nothing else holds it (else every answer rendered here would cost
        // a fresh buffer).
        chunks.recycle()
        if finishing { end(connection) }
        connection.pump()
    }

    func finish() {
        guard !finished.exchange(true, ordering: .acquiringAndReleasing) else { return }
        loop.executeSoonOrNow(for: connection) { [self] in
            guard !connection.isClosed, !cancelled.load(ordering: .acquiring) else { return }
            end(connection)
            connection.pump()
        }
    }
}
