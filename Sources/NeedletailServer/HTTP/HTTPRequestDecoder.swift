/// Turns a connection's byte stream into complete requests: head parser plus body decoder.
///
/// Pure (no sockets): the codec feeds it the unconsumed bytes and acts on what it returns, and
/// tests feed it the same bytes split every possible way.
struct HTTPRequestDecoder {
    enum Event {
        /// More bytes are needed.
        case needMore
        /// Leading empty lines or body bytes were consumed; call again with the rest.
        case progress
        /// The client asked for `100 Continue` before sending its body.
        case sendContinue
        /// A whole request.
        case request(HTTPRequestHead, body: [UInt8], trailers: [UInt8])
        /// A request the codec must refuse; the connection cannot be reused.
        case error(HTTPError)
    }

    private var parser: HTTPHeadParser
    private var pendingHead: HTTPRequestHead?
    private var body: HTTPBodyDecoder?
    private let limits: HTTPLimits

    init(limits: HTTPLimits) {
        self.limits = limits
        parser = HTTPHeadParser(limits: limits)
    }

    /// Whether part of a request has been received (head bytes or a head awaiting its body).
    var isMidRequest: Bool { parser.hasPartialHead || pendingHead != nil }
    /// Whether a body is being read.
    var isReadingBody: Bool { pendingHead != nil }

    /// Keeps an answered request's head bytes for the next head.
    mutating func recycle(headBytes: consuming [UInt8]) { parser.recycle(headBytes) }

    /// Consumes from `bytes` (which start at the first unconsumed byte) and says what happened.
    mutating func next(_ bytes: UnsafeRawBufferPointer) -> (Event, consumed: Int) {
        if pendingHead != nil {
            switch body!.feed(bytes) {
            case .failure(let e):
                pendingHead = nil
                body = nil
                return (.error(e), bytes.count)
            case .success(let used):
                guard body!.isDone else { return (used > 0 ? .progress : .needMore, used) }
                let head = pendingHead!
                var decoder = body!
                pendingHead = nil
                body = nil
                return (.request(head, body: decoder.takeBody(), trailers: decoder.trailers), used)
            }
        }
        switch parser.parse(bytes) {
        case .needMore:
            return (.needMore, 0)
        case .skip(let n):
            return (.progress, n)
        case .error(let e):
            return (.error(e), bytes.count)
        case .head(let head, let consumed):
            if head.framing == .none {
                return (.request(head, body: [], trailers: []), consumed)
            }
            pendingHead = head
            body = HTTPBodyDecoder(framing: head.framing, limits: limits)
            // Ask for the body only if the client is waiting for permission (nothing sent yet).
            if head.expectContinue && consumed == bytes.count { return (.sendContinue, consumed) }
            return (.progress, consumed)
        }
    }
}
