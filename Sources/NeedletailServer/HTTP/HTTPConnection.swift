import Glibc
import Logging
import NeedletailBytes
import NeedletailLoop
import NeedletailHTTP
import NeedletailPOSIX

/// The HTTP/1.1 codec for one connection: parses requests as bytes arrive, calls the app,
/// queues responses in order (a pipelined batch leaves in one writev), enforces limits and
/// timeouts, and closes when HTTP says so.
final class HTTPConnection: ConnectionHandler, StreamCodec {
    private let context: LoopContext
    // Loop-confined; no runtime exclusivity checks (see Connection in NeedletailLoop).
    @exclusivity(unchecked) private var decoder: HTTPRequestDecoder
    @exclusivity(unchecked) private var phase = Phase.reading(headTimerArmed: false)
    /// A suspended request being answered, when the server records requests (access log,
    /// metrics, slow log).
    @exclusivity(unchecked) private var observed: Observed?
    /// While `respond` answers with the request in hand, `record` leaves the answer here and
    /// `respond` records it with the request it still holds (no copy of the request is kept).
    @exclusivity(unchecked) private var recordingDirectly = false
    @exclusivity(unchecked) private var directAnswer: DirectAnswer?
    /// The route of a pending answer, until the request it belongs to is kept in `observed`.
    @exclusivity(unchecked) private var pendingRoute: String?

    /// Whether the answer being written is to be recorded.
    private var isRecording: Bool { recordingDirectly || observed != nil }

    /// What `record` saw of an answer written while `respond` still held the request.
    struct DirectAnswer {
        let status: Int, bodyBytes: Int, route: String?, ready: UInt64, stream: Bool
    }

    /// Where the connection is between its requests.
    enum Phase {
        /// Taking requests; `headTimerArmed` once a head's first byte started its timeout.
        case reading(headTimerArmed: Bool)
        /// A streamed answer is in progress: no further request is taken until it finishes,
        /// then the connection is kept (`keepAlive`) or closed.
        case streaming(LoopStreamSink, keepAlive: Bool)
        /// An async handler's task is suspended: pipelined requests wait (in order) until it
        /// answers; the client leaving cancels it.
        case awaiting(AsyncExchange)

        /// Whether an answer is in progress (no new request is taken).
        var isBusy: Bool {
            switch self {
            case .reading: return false
            case .streaming, .awaiting: return true
            }
        }
    }

    init(context: LoopContext) {
        self.context = context
        decoder = HTTPRequestDecoder(limits: context.limits)
    }

    func received(_ bytes: UnsafeRawBufferPointer, on connection: Connection) -> Int {
        connection.isIdle = false
        // Idle again only if the last request was answered with keep-alive and no part of the
        // next one has arrived.
        defer { if decoder.isMidRequest || phase.isBusy { connection.isIdle = false } }
        var offset = 0
        while offset < bytes.count && !connection.isClosing && !connection.isOutputFull && !phase.isBusy {
            let (event, used) = decoder.next(UnsafeRawBufferPointer(rebasing: bytes[offset...]))
            offset += used
            // Moved, not copied: the head holds the request's bytes (a copy is a retain each).
            switch consume event {
            case .needMore:
                armRequestTimer(on: connection)
                return offset
            case .progress:
                armRequestTimer(on: connection)
            case .sendContinue:
                connection.write { $0.append("HTTP/1.1 100 Continue\r\n\r\n") }
                connection.flush()
                armRequestTimer(on: connection)
            case .error(let e):
                refuse(e, on: connection)
                return bytes.count
            case .request(let head, let body, let trailers):
                phase = .reading(headTimerArmed: false)
                respond(to: head, body: body, trailers: trailers, on: connection)
            }
        }
        return offset
    }

    /// Header timeout: counted once from the first byte of a head (a slow client cannot extend
    /// it). Body timeout: counted from the last progress.
    private func armRequestTimer(on connection: Connection) {
        if decoder.isReadingBody {
            connection.setTimeout(seconds: context.limits.bodyTimeout)
        } else if decoder.isMidRequest, case .reading(headTimerArmed: false) = phase {
            phase = .reading(headTimerArmed: true)
            connection.setTimeout(seconds: context.limits.headerTimeout)
        }
    }

    private func respond(to head: consuming HTTPRequestHead, body: [UInt8], trailers: [UInt8], on connection: Connection) {
        let keepAlive = head.keepAlive && !connection.loop.isStopping
        let method = head.method, version = head.version
        let secure = connection.isSecure
        let request = head.request(body: body, trailers: trailers, remote: connection.withPeer(RemoteAddress.init(peer:)), isSecure: secure)
        if context.observing {
            respondRecorded(request, method: method, version: version, keepAlive: keepAlive, on: connection)
            return
        }
        answer(
            produce(request, on: connection), method: method, version: version, keepAlive: keepAlive,
            requestHeaders: request.headers, on: connection)
        decoder.recycle(headBytes: request.takeStorage())
    }

    /// The app's answer, or the redirect to HTTPS when plain HTTP is redirected.
    @inline(__always)
    private func produce(_ request: borrowing Request, on connection: Connection) -> Response {
        context.produce(request, secure: connection.isSecure)
    }

    /// The same host and target over HTTPS on `port` (301 for GET and HEAD, 308 otherwise, so
    /// that the method and body are kept); 400 without a Host to send the client to.
    static func redirect(_ request: borrowing Request, toPort port: UInt16) -> Response {
        guard let host = request.host, !host.isEmpty else {
            var body = Chunks()
            body.append("400 Bad Request: no Host to redirect to\n")
            return Response(status: .badRequest, contentType: Response.textType, body: body)
        }
        // The name without its port: an IP literal keeps its brackets.
        var name = Substring(host)
        if name.hasPrefix("["), let close = name.firstIndex(of: "]") {
            name = name[...close]
        } else if let colon = name.lastIndex(of: ":") {
            name = name[..<colon]
        }
        let location = "https://\(name)\(port == 443 ? "" : ":\(port)")\(request.target)"
        let keepsMethod = request.method != .get && request.method != .head
        var body = Chunks()
        body.append(unescaped: "Moved to \(location)\n")
        var response = Response(
            status: keepsMethod ? .permanentRedirect : .movedPermanently, contentType: Response.textType, body: body)
        response.addHeader("Location", location)
        return response
    }

    /// `respond` when requests are recorded (access log, metrics, slow log), kept out of line so
    /// that the plain path stays small.
    @inline(never)
    private func respondRecorded(
        _ request: consuming Request, method: HTTPMethod, version: HTTPVersion, keepAlive: Bool, on connection: Connection
    ) {
        let start = context.clock()
        recordingDirectly = true
        answer(
            produce(request, on: connection), method: method, version: version, keepAlive: keepAlive,
            requestHeaders: request.headers, on: connection)
        recordingDirectly = false
        if let a = directAnswer.take() {
            context.observe(
                request, start: start, waited: 0, status: a.status, bodyBytes: a.bodyBytes, route: a.route, ready: a.ready,
                now: connection.loop.wallClock, stream: a.stream)
            decoder.recycle(headBytes: request.takeStorage())
        } else {
            // Suspended: the request moves into the record its answer will complete (a
            // copy would cost a retain per reference it holds).
            var o = Observed(consume request, start: start)
            o.route = pendingRoute.take()
            o.suspend()
            observed = o
        }
    }

    /// Writes an answer (or starts its stream), then takes the next request or closes.
    /// `requestHeaders`: the request's, for Accept-Encoding.
    private func answer(
        _ response: consuming Response, method: HTTPMethod, version: HTTPVersion, keepAlive: Bool,
        requestHeaders: HeaderFields = .empty, on connection: Connection
    ) {
        let headOnly = method == .head || response.status.forbidsBody
        let ready = isRecording ? context.clock() : 0
        // The body taken out of the response, looked at once: each copy of it costs retains on
        // every request, and a chunk buffer goes back to the pool only when nothing else holds it.
        switch response.takeBody() {
        case .chunks(var chunks):
            let coding = context.compression != nil ? context.compress(&response, &chunks, requestHeaders: requestHeaders) : nil
            writeHead(
                response, framing: response.status.forbidsBody ? .none : .length(chunks.count), keepAlive: keepAlive, version: version,
                coding: coding, on: connection)
            if !headOnly { connection.write(chunks) }
            if isRecording { record(response, bodyBytes: headOnly ? 0 : chunks.count, ready: ready, on: connection) }
            chunks.recycle()
        case .file(let file):
            writeHead(
                response, framing: response.status.forbidsBody ? .none : .length(file.count), keepAlive: keepAlive, version: version,
                on: connection)
            if !headOnly { connection.write(file: file) }
            if isRecording { record(response, bodyBytes: headOnly ? 0 : file.count, ready: ready, on: connection) }
        case .stream(let produce):
            if isRecording { record(response, bodyBytes: 0, ready: ready, stream: true, on: connection) }
            startStream(response, produce: produce, method: method, version: version, keepAlive: keepAlive, on: connection)
            return
        case .pending(let pending):
            if recordingDirectly { pendingRoute = response.route } else { observed?.route = response.route }
            startAsync(pending, method: method, version: version, keepAlive: keepAlive, requestHeaders: requestHeaders, on: connection)
            return
        }
        awaitNextRequest(keepAlive: keepAlive, on: connection)
    }

    /// Runs an async handler as a task on this loop. One that never suspends is answered like a
    /// synchronous one, before this returns; one that suspends parks the connection (`awaiting`)
    /// until it answers, its deadline passes (503) or the client leaves (cancelled).
    private func startAsync(
        _ pending: PendingReply, method: HTTPMethod, version: HTTPVersion, keepAlive: Bool, requestHeaders: HeaderFields,
        on connection: Connection
    ) {
        guard context.suspended < context.maxSuspended else {
            var busy = Router.errorPage(.serviceUnavailable, detail: "Too many requests are waiting; try again in a moment.")
            busy.addHeader("Retry-After", "1")
            answer(busy, method: method, version: version, keepAlive: false, on: connection)
            return
        }
        let exchange = AsyncExchange(
            method: method, version: version, keepAlive: keepAlive, requestHeaders: context.compression == nil ? .empty : requestHeaders)
        let handle = OnLoop(codec: self, connection: connection, exchange: exchange)
        exchange.task = connection.loop.startTask {
            let (response, failure) = await pending.produce()
            handle.codec.asyncAnswered(handle.exchange, response, failure: failure, on: handle.connection)
        }
        if let response = exchange.early.take() {
            exchange.done = true
            answer(response, method: method, version: version, keepAlive: keepAlive, requestHeaders: requestHeaders, on: connection)
            return
        }
        guard !exchange.done else { return }  // cancelled before it could answer
        exchange.started = true
        observed?.suspend()
        context.suspended += 1
        phase = .awaiting(exchange)
        // The deadline on the connection's own timer (a second's resolution, rounded up: a
        // heap entry per request cost more than the rest of its bookkeeping).
        connection.setTimeout(seconds: max(1, (pending.deadline + 999) / 1000))
        connection.pauseReading()  // pipelined requests wait; EPOLLRDHUP still tells of a client leaving
    }

    /// The deadline of a suspended exchange passed: 503, and its task is cancelled.
    private func asyncTimedOut(_ exchange: AsyncExchange, on connection: Connection) {
        exchange.task?.cancel()
        var late = Router.errorPage(.serviceUnavailable, detail: "This took too long; try again later.")
        late.addHeader("Retry-After", "5")
        finishAsync(exchange, with: late, keepAlive: false, on: connection)
    }

    /// The task's answer (on this loop's thread).
    func asyncAnswered(_ exchange: AsyncExchange, _ response: Response?, failure: String?, on connection: Connection) {
        if let failure { context.logger.error("\(failure)") }
        guard !exchange.done else { return }  // answered already (deadline) or the connection has gone
        guard exchange.started else {
            // Still inside startAsync: it writes the answer as a synchronous one.
            exchange.early = response
            if response == nil { exchange.done = true }
            return
        }
        guard let response else {
            finishAsync(exchange, with: nil, keepAlive: false, on: connection)
            return
        }
        finishAsync(exchange, with: response, keepAlive: exchange.keepAlive && !connection.loop.isStopping, on: connection)
    }

    /// Ends a suspended exchange: its answer (none: the client has gone), then the next request.
    private func finishAsync(_ exchange: AsyncExchange, with response: Response?, keepAlive: Bool, on connection: Connection) {
        exchange.done = true
        context.suspended -= 1
        observed?.resume()
        phase = .reading(headTimerArmed: false)
        guard !connection.isClosed else { return }
        guard let response else {
            connection.close()
            return
        }
        answer(
            response, method: exchange.method, version: exchange.version, keepAlive: keepAlive,
            requestHeaders: exchange.requestHeaders, on: connection)
        if case .streaming = phase { return }
        connection.resumeReading()
    }

    /// The answered request's log line and counts (the request is done with after this).
    private func record(_ response: borrowing Response, bodyBytes: Int, ready: UInt64, stream: Bool = false, on connection: Connection) {
        if recordingDirectly {
            recordingDirectly = false
            // The route only for the counts (a String kept is a retain and a release).
            directAnswer = DirectAnswer(
                status: response.status.code, bodyBytes: bodyBytes, route: context.stats != nil ? response.route : nil, ready: ready,
                stream: stream)
            return
        }
        guard let o = observed.take() else { return }
        context.observe(
            o, status: response.status.code, bodyBytes: bodyBytes, route: response.route, ready: ready, now: connection.loop.wallClock,
            stream: stream)
        decoder.recycle(headBytes: o.request.headBytes)
    }

    /// After an answer: keep the connection for the next request (and count it idle), or close.
    private func awaitNextRequest(keepAlive: Bool, on connection: Connection) {
        if keepAlive {
            connection.setNoDelay()
            connection.setTimeout(seconds: context.limits.keepAliveTimeout)
            connection.isIdle = true
        } else {
            connection.closeAfterFlush()
        }
    }

    /// Sends the head of a streamed response and hands the producer its stream. Until the
    /// stream finishes, reading pauses and pipelined requests wait.
    private func startStream(
        _ response: Response, produce: @Sendable (ResponseStream) -> Void, method: HTTPMethod, version: HTTPVersion,
        keepAlive: Bool, on connection: Connection
    ) {
        let chunked = version == .http1_1
        let framing: HTTPResponseEncoder.Framing = response.status.forbidsBody ? .none : (chunked ? .chunked : .untilClose)
        let keep = keepAlive && framing != .untilClose
        writeHead(response, framing: framing, keepAlive: keep, version: version, on: connection)
        guard method != .head, framing != .none else {
            finishResponse(keepAlive: keep, on: connection)
            return
        }
        let sink = LoopStreamSink(connection: connection, codec: self, chunked: chunked)
        phase = .streaming(sink, keepAlive: keep)
        connection.setTimeout(seconds: 0)  // a stream may idle for long; a dead peer fails a write
        // Small writes that must leave at once (events, a parked poll's answer): no Nagle delay,
        // and no setsockopt on the path from a notify to the answer.
        connection.setNoDelay()
        connection.pauseReading()
        connection.flush()
        produce(ResponseStream(sink: sink))
    }

    /// A stream's chunks: in chunked coding for HTTP/1.1, as they are for HTTP/1.0.
    func frame(_ chunks: Chunks, of sink: LoopStreamSink, on connection: Connection) {
        if sink.chunked {
            connection.write { out in
                out.appendHex(chunks.count)
                out.append("\r\n")
            }
        }
        connection.write(chunks)
        if sink.chunked { connection.write { $0.append("\r\n") } }
    }

    /// The stream's producer called `finish()`: the last chunk, then the next request or close.
    func end(_ sink: LoopStreamSink, on connection: Connection) {
        if sink.chunked { connection.write { $0.append("0\r\n\r\n") } }
        streamFinished(on: connection)
    }

    /// The stream's producer called `finish()` (on the loop): take the next request, or close.
    func streamFinished(on connection: Connection) {
        guard case .streaming(_, let keepAlive) = phase else { return }
        phase = .reading(headTimerArmed: false)
        finishResponse(keepAlive: keepAlive, on: connection)
        connection.resumeReading()
    }

    private func finishResponse(keepAlive: Bool, on connection: Connection) {
        awaitNextRequest(keepAlive: keepAlive, on: connection)
        connection.pump()
    }

    /// Writes a whole answer that is not a stream (the codec's own refusals).
    private func write(_ response: Response, keepAlive: Bool, version: HTTPVersion, on connection: Connection) {
        let forbidsBody = response.status.forbidsBody
        writeHead(
            response, framing: forbidsBody ? .none : .length(response.bodyCount), keepAlive: keepAlive, version: version, on: connection)
        if !forbidsBody, let chunks = response.body.chunks { connection.write(chunks) }
    }

    private func writeHead(
        _ response: Response, framing: HTTPResponseEncoder.Framing, keepAlive: Bool, version: HTTPVersion,
        coding: StaticString? = nil, on connection: Connection
    ) {
        let date = context.dates.dateLine(now: connection.loop.wallClock)
        let context = self.context
        connection.write { out in
            HTTPResponseEncoder.encodeHead(
                response, framing: framing,
                keepAlive: keepAlive, version: version, date: date,
                defaults: connection.isSecure ? context.secureDefaults : context.defaults, coding: coding,
                into: out, dropped: context.droppedField)
        }
    }

    /// Answers a request the codec refuses, then closes (lingering, so the client reads it).
    private func refuse(_ error: HTTPError, on connection: Connection) {
        context.logger.debug("refused request", metadata: ["status": "\(error.status.code)", "reason": "\(error.reason)"])
        var body = Chunks()
        body.append(unescaped: "\(error.status.code) \(error.status.reason): \(error.reason)\n")
        let response = Response(status: error.status, contentType: Response.textType, body: body)
        if context.observing {
            // Logged and counted like any answer (as nginx logs its 400s), with "-" for what
            // was never read.
            context.accessLog?.appendRefused(
                connection.withPeer(RemoteAddress.init(peer:)), status: error.status.code, bodyBytes: body.count,
                now: connection.loop.wallClock)
            context.stats?.record(route: nil, status: error.status.code, seconds: 0, bodyBytes: body.count)
        }
        write(response, keepAlive: false, version: .http1_1, on: connection)
        connection.closeAfterFlush(linger: true)
    }

    func peerClosed(_ connection: Connection) {
        // The client left while its handler waits: cancel it (there is nobody to answer).
        if case .awaiting(let exchange) = phase {
            exchange.task?.cancel()
            finishAsync(exchange, with: nil, keepAlive: false, on: connection)
            return
        }
        // Answer what was received in full, then close.
        connection.closeAfterFlush()
    }

    func timedOut(_ connection: Connection) {
        if case .awaiting(let exchange) = phase {
            asyncTimedOut(exchange, on: connection)
            return
        }
        if decoder.isMidRequest {
            refuse(HTTPError(.requestTimeout, "request not received in time"), on: connection)
        } else {
            connection.close()
        }
    }

    func shutdownRequested(_ connection: Connection) -> Bool {
        if decoder.isMidRequest || phase.isBusy { return false }  // answered with Connection: close when complete
        if connection.pendingOutput == 0 { return true }
        connection.closeAfterFlush()
        return false
    }

    func closed(_ connection: Connection) {
        switch phase {
        case .streaming(let sink, _): sink.cancel()
        case .awaiting(let exchange):
            exchange.task?.cancel()
            finishAsync(exchange, with: nil, keepAlive: false, on: connection)
        case .reading: break
        }
        phase = .reading(headTimerArmed: false)
    }
}

/// One async handler's run on a connection: what its answer needs, and how it ends. Loop-confined.
final class AsyncExchange {
    let method: HTTPMethod, version: HTTPVersion, keepAlive: Bool
    /// The request's fields, for compressing the answer (empty when compression is off).
    let requestHeaders: HeaderFields
    @exclusivity(unchecked) var task: LoopTask?
    /// Set once the task has suspended (the connection waits for it).
    @exclusivity(unchecked) var started = false
    /// Set once answered (by the task, the deadline) or abandoned (the client left).
    @exclusivity(unchecked) var done = false
    /// The answer of a task that never suspended, handed back to `startAsync`.
    @exclusivity(unchecked) var early: Response?

    init(method: HTTPMethod, version: HTTPVersion, keepAlive: Bool, requestHeaders: HeaderFields) {
        (self.method, self.version, self.keepAlive) = (method, version, keepAlive)
        self.requestHeaders = requestHeaders
    }
}

extension LoopContext {
    /// The app's answer to `request`, or the redirect to HTTPS when that is on and `secure` is
    /// not (every codec of the native server asks here).
    @inline(__always)
    func produce(_ request: borrowing Request, secure: Bool) -> Response {
        if let port = https.redirectPort, !secure, request.path != https.exempt {
            return HTTPConnection.redirect(request, toPort: port)
        }
        return responder.respond(to: request)
    }
}
