import NeedletailBytes
import Synchronization

/// The writing end of a streamed response body (server-sent events, long answers produced
/// over time). Safe from any thread: each call is handed to the connection's loop.
///
/// Obtained from `Response.streaming`: the producer writes chunks as they are ready and calls
/// `finish()` once. Over HTTP/1.1 the body goes out with chunked transfer coding; to an
/// HTTP/1.0 client it goes out as is and the connection closes at the end. When the client
/// goes away, `isCancelled` turns true and writes are dropped.
public final class ResponseStream: Sendable {
    private let sink: any ResponseStreamSink

    /// Made by a codec around its sink.
    public init(sink: any ResponseStreamSink) { self.sink = sink }

    /// Queues `chunks` for sending. The stream takes ownership of them.
    public func write(_ chunks: consuming Chunks) {
        sink.write(ChunksTransfer(chunks))
    }

    /// Queues `text` (sent as is; escape it first if it goes into HTML).
    public func write(_ text: String) {
        var c = Chunks()
        c.append(unescaped: text)
        write(c)
    }

    /// Ends the body. Later writes are ignored.
    public func finish() { sink.finish() }

    /// Writes `chunks` and ends the body in one hand-over to the connection's loop (a long-poll
    /// answer: one task and one write instead of two).
    public func finish(with chunks: consuming Chunks) { sink.finish(after: ChunksTransfer(chunks)) }

    /// Whether the client has gone away (or the stream finished).
    public var isCancelled: Bool { sink.isCancelled }
}

/// Where a codec receives a stream's chunks. Implementations hand each call to their loop.
public protocol ResponseStreamSink: Sendable {
    func write(_ chunks: consuming ChunksTransfer)
    func finish()
    /// Writes the last chunks and finishes; sinks on a loop do both in one task.
    func finish(after last: consuming ChunksTransfer)
    var isCancelled: Bool { get }
}

extension ResponseStreamSink {
    public func finish(after last: consuming ChunksTransfer) {
        write(last)
        finish()
    }
}

/// Chunks handed from the producing thread to a connection's loop. The sender gives up the
/// value (`ResponseStream.write` consumes it), so no two threads ever touch the same chain;
/// that is the invariant behind `@unchecked Sendable`.
public struct ChunksTransfer: @unchecked Sendable {
    public let chunks: Chunks
    init(_ chunks: consuming Chunks) { self.chunks = chunks }

    /// The chunks, ending the transfer: held by nothing else, so that a codec that copied
    /// them can recycle their buffer.
    public consuming func take() -> Chunks { chunks }
}

extension Response {
    /// A response whose body `produce` writes over time through a `ResponseStream`. `produce`
    /// runs on the connection's loop right after the head is queued; it may keep the stream and
    /// write from any thread later. It must eventually call `finish()`.
    public static func streaming(
        status: HTTPStatus = .ok, contentType: String? = nil, headers: [(name: String, value: String)] = [],
        _ produce: @escaping @Sendable (ResponseStream) -> Void
    ) -> Response {
        Response(status: status, contentType: contentType, headers: headers, body: .stream(produce))
    }
}
