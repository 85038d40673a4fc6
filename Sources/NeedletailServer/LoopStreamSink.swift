import NeedletailBytes
import NeedletailLoop
import NeedletailHTTP
import Synchronization

/// What frames a stream's chunks for its protocol (chunked HTTP, raw HTTP/1.0, FastCGI STDOUT
/// records): the connection handler that started the stream. Called on the loop.
protocol StreamCodec: AnyObject {
    /// Writes `chunks` as part of `sink`'s body.
    func frame(_ chunks: Chunks, of sink: LoopStreamSink, on connection: Connection)
    /// Ends `sink`'s body.
    func end(_ sink: LoopStreamSink, on connection: Connection)
}

/// The codec end of a `ResponseStream`: chunks written on any thread are handed to the
/// connection's loop, where the codec frames them and ends the body.
///
/// `@unchecked Sendable`: the connection and the codec are used only on the loop's thread
/// (directly when already there, else in a loop task); the flags shared across threads are
/// atomics. One object per stream: the codec is referenced, not captured in closures (a
/// parked poll is a crowd of these; each closure was an allocation of its own).
final class LoopStreamSink: ResponseStreamSink, @unchecked Sendable {
    private let loop: EventLoop
    private let connection: Connection
    /// Weak: a sink kept by a parked subscriber must not keep a closed connection's handler.
    private weak var codec: (any StreamCodec)?
    /// HTTP/1.1: the body goes out in chunked coding.
    let chunked: Bool
    /// FastCGI: the request the body belongs to.
    let requestID: UInt16
    /// HTTP/2: the stream the body belongs to.
    let streamID: Int32
    private let finished = Atomic<Bool>(false)
    private let cancelled = Atomic<Bool>(false)

    /// Made on the loop's thread by a codec.
    init(connection: Connection, codec: any StreamCodec, chunked: Bool = false, requestID: UInt16 = 0, streamID: Int32 = 0) {
        loop = connection.loop
        self.connection = connection
        self.codec = codec
        self.chunked = chunked
        self.requestID = requestID
        self.streamID = streamID
    }

    var isCancelled: Bool {
        cancelled.load(ordering: .acquiring) || finished.load(ordering: .acquiring)
    }

    /// The connection closed or the request was aborted (called on the loop).
    func cancel() { cancelled.store(true, ordering: .releasing) }

    func write(_ transfer: consuming ChunksTransfer) {
        guard !isCancelled else { return }
        hand(transfer, finishing: false)
    }

    func finish(after last: consuming ChunksTransfer) {
        guard !cancelled.load(ordering: .acquiring), !finished.exchange(true, ordering: .acquiringAndReleasing) else { return }
        hand(last, finishing: true)
    }

    func finish() {
        guard !finished.exchange(true, ordering: .acquiringAndReleasing) else { return }
        loop.executeSoonOrNow(for: connection) { [self] in send(Chunks(), finishing: true) }
    }

    /// On the loop's thread the chunks are taken over (so that their buffer can be recycled
    /// once copied); from another thread they travel in a task.
    private func hand(_ transfer: consuming ChunksTransfer, finishing: Bool) {
        if loop.runsNow(for: connection) {
            send(transfer.take(), finishing: finishing)
        } else {
            loop.execute { [self, transfer] in send(transfer.chunks, finishing: finishing) }
        }
    }

    /// On the loop: frames `chunks` (and the end of the body when `finishing`), then writes.
    private func send(_ chunks: consuming Chunks, finishing: Bool) {
        guard !connection.isClosed, !cancelled.load(ordering: .acquiring), let codec else { return }
        if !chunks.isEmpty { codec.frame(chunks, of: self, on: connection) }
        // Short chunks were copied into the connection's queue: their buffer goes back to this
        // thread's pool when nothing else holds it (else every answer rendered here would cost
        // a fresh buffer).
        chunks.recycle()
        if finishing { codec.end(self, on: connection) }
        connection.pump()
    }
}
