import NeedletailBytes
import NeedletailLoop
import NeedletailWeb
import Synchronization

/// The HTTP/1.1 end of a `ResponseStream`: chunks from any thread are handed to the
/// connection's loop and written with chunked framing (raw for HTTP/1.0).
///
/// `@unchecked Sendable`: `connection` and `handler` are touched only inside `loop.execute`
/// closures, i.e. on the loop's thread; the flags shared across threads are atomics.
final class HTTPStreamSink: ResponseStreamSink, @unchecked Sendable {
    private let loop: EventLoop
    private let connection: Connection
    private weak var handler: HTTPConnection?
    private let chunked: Bool
    private let finished = Atomic<Bool>(false)
    private let cancelled = Atomic<Bool>(false)

    init(connection: Connection, handler: HTTPConnection, chunked: Bool) {
        loop = connection.loop
        self.connection = connection
        self.handler = handler
        self.chunked = chunked
    }

    var isCancelled: Bool {
        cancelled.load(ordering: .acquiring) || finished.load(ordering: .acquiring)
    }

    /// The connection closed (called on the loop).
    func cancel() { cancelled.store(true, ordering: .releasing) }

    func write(_ transfer: ChunksTransfer) {
        guard !isCancelled else { return }
        loop.execute { [self] in
            let chunks = transfer.chunks
            guard !connection.isClosed, !chunks.isEmpty else { return }
            if chunked {
                connection.write { out in
                    out.append(string: String(chunks.count, radix: 16))
                    out.append("\r\n")
                }
            }
            connection.write(chunks)
            if chunked { connection.write { $0.append("\r\n") } }
            connection.pump()
        }
    }

    func finish() {
        guard !finished.exchange(true, ordering: .acquiringAndReleasing) else { return }
        loop.execute { [self] in
            guard !connection.isClosed else { return }
            if chunked { connection.write { $0.append("0\r\n\r\n") } }
            handler?.streamFinished(on: connection)
        }
    }
}
