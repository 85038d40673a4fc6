import Logging
import NeedletailBytes
import NeedletailLoop
import NeedletailHTTP
import NeedletailPOSIX

/// Settings of the FastCGI responder.
public struct FastCGILimits: Sendable {
    /// Largest PARAMS stream of one request (all name-value pairs); over it the request ends
    /// with a message on STDERR and the connection closes.
    public var maxParamsBytes = 64 * 1024
    /// Largest request body (STDIN); over it: `Status: 413`.
    public var maxBodyBytes = 1 << 20
    /// Seconds an idle connection from the web server is kept (nginx keeps pooled ones).
    public var idleTimeout = 300
    /// Requests in flight on one connection (multiplexing); a BEGIN_REQUEST beyond it is
    /// answered END_REQUEST with OVERLOADED. Advertised as FCGI_MAX_REQS.
    public var maxRequestsPerConnection = 1000
    /// Peers allowed to connect (FCGI_WEB_SERVER_ADDRS); empty means any.
    public var allowedPeers: [String] = []
    public init() {}
}

/// The FastCGI responder codec for one connection from a web server: records in, the same
/// `Request` the HTTP codec makes, CGI headers and body out as STDOUT records, then
/// END_REQUEST. Several requests may be in flight on one connection (multiplexing).
final class FastCGIConnection: ConnectionHandler, StreamCodec {
    final class PendingRequest {
        let id: UInt16
        let keepConnection: Bool
        var params: [UInt8] = []
        var paramsDone = false
        var body: [UInt8] = []
        var stdinDone = false
        var stream: LoopStreamSink?
        /// An async handler's run: its task, its deadline, and whether it has suspended.
        var task: LoopTask?
        var deadline: LoopTimerID?
        var suspended = false
        var answered = false
        /// The answer of a task that never suspended, handed back to `dispatch`.
        var early: Response?
        /// Timed for the access log, the metrics or the slow-request log.
        var observed: Observed?
        var method: HTTPMethod = .get
        init(id: UInt16, keepConnection: Bool) {
            self.id = id
            self.keepConnection = keepConnection
        }
    }

    private let context: LoopContext
    @exclusivity(unchecked) private var reader = FastCGIRecordReader()
    /// Content of a small record being collected (BEGIN_REQUEST, ABORT, GET_VALUES, unknown).
    @exclusivity(unchecked) private var small: [UInt8] = []
    @exclusivity(unchecked) private var requests: [UInt16: PendingRequest] = [:]
    /// Where a response's CGI head is composed before it is framed (reused: no allocation).
    private let headScratch = ByteBuffer(capacity: 512)

    init(context: LoopContext) {
        self.context = context
    }

    func received(_ bytes: UnsafeRawBufferPointer, on connection: Connection) -> Int {
        reader.read(bytes) { event in
            switch event {
            case .begin(let h):
                guard h.version == FastCGI.version else {
                    protocolError("record with version \(h.version)", on: connection)
                    return false
                }
                small.removeAll(keepingCapacity: true)
            case .content(let h, let piece):
                content(h, piece, on: connection)
            case .complete(let h):
                recordComplete(h, on: connection)
            }
            return !connection.isClosing
        }
    }

    // MARK: Records

    private func content(_ h: FastCGI.Header, _ piece: UnsafeRawBufferPointer, on connection: Connection) {
        switch FastCGI.RecordType(rawValue: h.type) {
        case .params:
            guard let r = requests[h.requestID], !r.paramsDone else { return }
            guard r.params.count + piece.count <= context.fastCGI.maxParamsBytes else {
                failParams(r, on: connection)
                return
            }
            r.params.append(contentsOf: piece)
        case .stdin:
            guard let r = requests[h.requestID], !r.stdinDone else { return }
            guard r.body.count + piece.count <= context.fastCGI.maxBodyBytes else {
                let refusal = CGIGateway.Refusal(
                    status: .contentTooLarge, reason: "request body larger than \(context.fastCGI.maxBodyBytes) bytes")
                finish(r, with: CGIGateway.refusalResponse(refusal), headOnly: false, on: connection)
                return
            }
            r.body.append(contentsOf: piece)
        case .data:
            return  // a responder has no use for FILTER data
        default:
            small.append(contentsOf: piece)
        }
    }

    private func recordComplete(_ h: FastCGI.Header, on connection: Connection) {
        let id = h.requestID
        switch FastCGI.RecordType(rawValue: h.type) {
        case .beginRequest where id != 0:
            guard small.count >= 8 else { return protocolError("short BEGIN_REQUEST", on: connection) }
            let role = UInt16(small[0]) << 8 | UInt16(small[1])
            let keep = small[2] & FastCGI.flagKeepConn != 0
            if requests[id] != nil { return protocolError("BEGIN_REQUEST for active request \(id)", on: connection) }
            guard requests.count < context.fastCGI.maxRequestsPerConnection else {
                connection.write { FastCGI.appendEndRequest(id: id, appStatus: 0, status: .overloaded, to: $0) }
                if !keep { connection.closeAfterFlush() }
                return
            }
            guard role == FastCGI.roleResponder else {
                connection.write { FastCGI.appendEndRequest(id: id, appStatus: 0, status: .unknownRole, to: $0) }
                if !keep { connection.closeAfterFlush() }
                return
            }
            requests[id] = PendingRequest(id: id, keepConnection: keep)
            connection.setTimeout(seconds: 0)
        case .abortRequest:
            guard let r = requests.removeValue(forKey: id) else { return }
            cancel(r, on: connection)
            connection.write { FastCGI.appendEndRequest(id: id, appStatus: 1, status: .requestComplete, to: $0) }
            afterRequest(r, on: connection)
        case .params where h.contentLength == 0:
            guard let r = requests[id], !r.paramsDone else { return }
            r.paramsDone = true
            if r.stdinDone { dispatch(r, on: connection) }
        case .stdin where h.contentLength == 0:
            guard let r = requests[id], !r.stdinDone else { return }
            r.stdinDone = true
            if r.paramsDone { dispatch(r, on: connection) }
        case .params, .stdin, .data:
            return
        case .getValues where id == 0:
            answerGetValues(on: connection)
        default:
            if id != 0 && (h.type == FastCGI.RecordType.beginRequest.rawValue || requests[id] == nil) {
                return  // records for an inactive request are ignored (web servers reuse ids)
            }
            let type = h.type
            connection.write { out in
                [type, 0, 0, 0, 0, 0, 0, 0].withUnsafeBytes { FastCGI.appendRecord(.unknownType, id: 0, content: $0, to: out) }
            }
        }
    }

    private func answerGetValues(on connection: Connection) {
        let asked: [(name: String, value: String)]
        switch small.withUnsafeBytes({ FastCGI.decodePairs($0, maxLength: 1024) }) {
        case .success(let pairs): asked = pairs
        case .failure: return protocolError("malformed GET_VALUES", on: connection)
        }
        var answer: [UInt8] = []
        for (name, _) in asked {
            switch name {
            case "FCGI_MAX_CONNS": FastCGI.appendPair(name: name, value: "10000", to: &answer)
            case "FCGI_MAX_REQS": FastCGI.appendPair(name: name, value: "\(context.fastCGI.maxRequestsPerConnection)", to: &answer)
            case "FCGI_MPXS_CONNS": FastCGI.appendPair(name: name, value: "1", to: &answer)
            default: break
            }
        }
        connection.write { out in answer.withUnsafeBytes { FastCGI.appendRecord(.getValuesResult, id: 0, content: $0, to: out) } }
    }

    /// The web server broke the protocol: log, and close (it sees the requests fail).
    private func protocolError(_ what: String, on connection: Connection) {
        context.logger.warning("FastCGI protocol error, closing the connection", metadata: ["error": "\(what)"])
        for r in requests.values { cancel(r, on: connection) }
        requests.removeAll()
        connection.closeAfterFlush(linger: true)
    }

    /// PARAMS over the cap: a STDERR line, END_REQUEST, and the connection closes.
    private func failParams(_ r: PendingRequest, on connection: Connection) {
        let message = "needletail: FastCGI params larger than \(context.fastCGI.maxParamsBytes) bytes\n"
        context.logger.warning("FastCGI params over the limit", metadata: ["limit": "\(context.fastCGI.maxParamsBytes)"])
        connection.write { out in
            Array(message.utf8).withUnsafeBytes { FastCGI.appendRecord(.stderr, id: r.id, content: $0, to: out) }
            FastCGI.appendRecord(.stderr, id: r.id, content: UnsafeRawBufferPointer(start: nil, count: 0), to: out)
            FastCGI.appendEndRequest(id: r.id, appStatus: 1, status: .requestComplete, to: out)
        }
        requests[r.id] = nil
        connection.closeAfterFlush(linger: true)
    }

    // MARK: Requests and responses

    private func dispatch(_ r: PendingRequest, on connection: Connection) {
        let params: CGIParams
        switch r.params.withUnsafeBytes({ FastCGI.decodePairRanges($0, maxLength: context.fastCGI.maxParamsBytes) }) {
        case .success(let p): params = CGIParams(bytes: r.params, pairs: p)
        case .failure:
            let refusal = CGIGateway.Refusal(status: .badRequest, reason: "malformed FastCGI params")
            finish(r, with: CGIGateway.refusalResponse(refusal), headOnly: false, on: connection)
            return
        }
        let request: Request
        r.params = []  // the request owns the bytes now (no copy when it appends header lines)
        do {
            request = try CGIGateway.request(from: params, body: r.body)
        } catch {
            finish(r, with: CGIGateway.refusalResponse(error), headOnly: false, on: connection)
            return
        }
        r.method = request.method
        if context.observing { r.observed = Observed(request, start: context.clock()) }
        answer(r, context.responder.respond(to: request), on: connection)
    }

    /// Sends an answer: streamed, or whole with END_REQUEST.
    private func answer(_ r: PendingRequest, _ built: Response, on connection: Connection) {
        if case .pending(let pending) = built.body {
            r.observed?.route = built.route
            startAsync(r, pending, on: connection)
            return
        }
        var response = built
        _ = response.loadFileBody()  // no sendfile into FastCGI records
        if let produce = response.body.stream, r.method != .head {
            startStream(r, response, produce: produce, on: connection)
        } else {
            finish(r, with: response, headOnly: r.method == .head, on: connection)
        }
    }

    /// Runs an async handler as a task on this loop; the other requests of the connection go
    /// on meanwhile (multiplexing). ABORT_REQUEST, or the web server closing the connection,
    /// cancels it; its deadline answers 503.
    private func startAsync(_ r: PendingRequest, _ pending: PendingReply, on connection: Connection) {
        guard context.suspended < context.maxSuspended else {
            var busy = Router.errorPage(.serviceUnavailable, detail: "Too many requests are waiting; try again in a moment.")
            busy.addHeader("Retry-After", "1")
            answer(r, busy, on: connection)
            return
        }
        let handle = OnLoop(codec: self, connection: connection, exchange: r)
        r.task = connection.loop.startTask {
            let (response, failure) = await pending.produce()
            handle.codec.asyncAnswered(handle.exchange, response, failure: failure, on: handle.connection)
        }
        if let response = r.early.take() {
            r.answered = true
            answer(r, response, on: connection)
            return
        }
        guard !r.answered else { return }
        r.suspended = true
        r.observed?.suspend()
        context.suspended += 1
        r.deadline = connection.loop.schedule(after: pending.deadline) { [self] in
            r.deadline = nil
            guard !r.answered, requests[r.id] === r else { return }
            r.task?.cancel()
            var late = Router.errorPage(.serviceUnavailable, detail: "This took too long; try again later.")
            late.addHeader("Retry-After", "5")
            asyncAnswered(r, late, failure: nil, on: connection)
        }
    }

    /// A task's answer (on this loop's thread); nil when it was cancelled.
    func asyncAnswered(_ r: PendingRequest, _ response: Response?, failure: String?, on connection: Connection) {
        if let failure { context.logger.error("\(failure)") }
        guard !r.answered else { return }
        guard r.suspended else {
            r.early = response
            if response == nil { r.answered = true }
            return
        }
        r.answered = true
        endSuspension(r, on: connection)
        guard let response, requests[r.id] === r, !connection.isClosed else { return }
        answer(r, response, on: connection)
        connection.pump()
    }

    /// The suspended count and the deadline of a request whose task has ended or been dropped.
    private func endSuspension(_ r: PendingRequest, on connection: Connection) {
        if let t = r.deadline { connection.loop.cancel(t) }
        r.deadline = nil
        if r.suspended {
            r.suspended = false
            r.observed?.resume()
            context.suspended -= 1
        }
    }

    /// A request dropped before its answer (ABORT_REQUEST, the connection gone): its stream
    /// stops, its task is cancelled.
    private func cancel(_ r: PendingRequest, on connection: Connection) {
        r.stream?.cancel()
        r.answered = true
        r.task?.cancel()
        endSuspension(r, on: connection)
    }

    /// Writes a whole response, END_REQUEST, and ends the request.
    private func finish(_ r: PendingRequest, with response: Response, headOnly: Bool, on connection: Connection) {
        let ready = r.observed != nil ? context.clock() : 0
        defer { record(r, response, bodyBytes: headOnly || response.status.forbidsBody ? 0 : response.bodyCount, ready: ready, on: connection) }
        let body = headOnly || response.status.forbidsBody ? Chunks() : response.body.chunks ?? Chunks()
        let context = self.context
        let head = headScratch
        head.removeAll()
        CGIGateway.encodeHead(
            response, contentLength: response.body.count, defaults: context.defaults,
            into: head, dropped: context.droppedField)
        let total = head.count + body.count
        if total <= FastCGI.maxContent {
            // One STDOUT record: header, CGI head and body chunks (static ones by reference), padding.
            connection.write { out in
                let padding = FastCGI.appendHeader(.stdout, id: r.id, length: total, to: out)
                out.append(head.bytes)
                if body.isEmpty { FastCGI.appendPadding(padding, to: out) }
                if body.isEmpty { Self.appendEnd(id: r.id, to: out) }
            }
            if !body.isEmpty {
                connection.write(body)
                connection.write { out in
                    FastCGI.appendPadding((8 - total % 8) % 8, to: out)
                    Self.appendEnd(id: r.id, to: out)
                }
            }
        } else {
            let all = ByteBuffer(capacity: total)
            all.append(head.bytes)
            body.forEachPart { part in
                if case .immortal(let p) = part { all.append(p) }
            } owned: {
                all.append($0)
            }
            writeStdout(id: r.id, all.bytes, on: connection)
            connection.write { Self.appendEnd(id: r.id, to: $0) }
        }
        requests[r.id] = nil
        afterRequest(r, on: connection)
    }

    /// The answered request's log line and counts.
    private func record(
        _ r: PendingRequest, _ response: Response, bodyBytes: Int, ready: UInt64, stream: Bool = false, on connection: Connection
    ) {
        guard let o = r.observed.take() else { return }
        context.observe(
            o, status: response.status.code, bodyBytes: bodyBytes, route: response.route, ready: ready, now: connection.loop.wallClock,
            stream: stream)
    }

    /// STDOUT records for `bytes`, at most 65528 content bytes each (no padding needed).
    private func writeStdout(id: UInt16, _ bytes: UnsafeRawBufferPointer, on connection: Connection) {
        var offset = 0
        while offset < bytes.count {
            let n = min(65528, bytes.count - offset)
            connection.write { out in
                FastCGI.appendRecord(.stdout, id: id, content: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + n)]), to: out)
            }
            offset += n
        }
    }

    /// The empty STDOUT record that ends the stream, and END_REQUEST.
    private static func appendEnd(id: UInt16, to out: ByteBuffer) {
        FastCGI.appendHeader(.stdout, id: id, length: 0, to: out)
        FastCGI.appendEndRequest(id: id, appStatus: 0, status: .requestComplete, to: out)
    }

    private func startStream(
        _ r: PendingRequest, _ response: Response, produce: @Sendable (ResponseStream) -> Void, on connection: Connection
    ) {
        let context = self.context
        if r.observed != nil { record(r, response, bodyBytes: 0, ready: context.clock(), stream: true, on: connection) }
        let head = ByteBuffer(capacity: 256)
        CGIGateway.encodeHead(
            response, contentLength: nil, extra: [("X-Accel-Buffering", "no")], defaults: context.defaults,
            into: head, dropped: context.droppedField)
        writeStdout(id: r.id, head.bytes, on: connection)
        let sink = LoopStreamSink(connection: connection, codec: self, requestID: r.id)
        r.stream = sink
        connection.flush()
        produce(ResponseStream(sink: sink))
    }

    /// A stream's chunks as STDOUT records of its request (if that request is still the one
    /// under its id: an aborted request's stream writes nothing).
    func frame(_ chunks: Chunks, of sink: LoopStreamSink, on connection: Connection) {
        guard let r = requests[sink.requestID], r.stream === sink else { return }
        let bytes = chunks.bytes
        bytes.withUnsafeBytes { writeStdout(id: r.id, $0, on: connection) }
    }

    /// The end of a stream: the empty STDOUT record and END_REQUEST.
    func end(_ sink: LoopStreamSink, on connection: Connection) {
        guard let r = requests[sink.requestID], r.stream === sink else { return }
        connection.write { Self.appendEnd(id: r.id, to: $0) }
        requests[r.id] = nil
        afterRequest(r, on: connection)
    }

    /// After END_REQUEST: close if the web server did not ask to keep the connection.
    private func afterRequest(_ r: PendingRequest, on connection: Connection) {
        if !r.keepConnection || (connection.loop.isStopping && requests.isEmpty) {
            // Handing over to a successor: the web server keeps this connection for its next
            // request, so it goes to the successor rather than closing under that request.
            if r.keepConnection && connection.loop.isHandingOver { connection.handOffWhenIdle = true }
            connection.closeAfterFlush()
        } else if requests.isEmpty {
            connection.setNoDelay()
            connection.setTimeout(seconds: context.fastCGI.idleTimeout)
        }
    }

    // MARK: Connection events

    func peerClosed(_ connection: Connection) {
        // nginx closes the upstream connection when its client goes away: drop everything.
        for r in requests.values { cancel(r, on: connection) }
        requests.removeAll()
        connection.close()
    }

    func timedOut(_ connection: Connection) {
        if requests.isEmpty { connection.close() }
    }

    func shutdownRequested(_ connection: Connection) -> Bool {
        if requests.isEmpty && connection.pendingOutput == 0 { return true }
        return false
    }

    func closed(_ connection: Connection) {
        for r in requests.values { cancel(r, on: connection) }
        requests.removeAll()
    }
}
