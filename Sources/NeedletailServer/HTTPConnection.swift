import Logging
import NeedletailBytes
import NeedletailLoop
import NeedletailWeb

/// What every HTTP connection on one loop shares: the app, the limits, the Date cache.
final class HTTPLoopContext {
    let responder: any Responder
    let limits: HTTPLimits
    let dates = HTTPDateCache()
    let logger: Logger

    init(responder: any Responder, limits: HTTPLimits, logger: Logger) {
        self.responder = responder
        self.limits = limits
        self.logger = logger
    }
}

/// The HTTP/1.1 codec for one connection: parses requests as bytes arrive, calls the app,
/// queues responses in order (a pipelined batch leaves in one writev), enforces limits and
/// timeouts, and closes when HTTP says so.
final class HTTPConnection: ConnectionHandler {
    private let context: HTTPLoopContext
    private var parser: HTTPHeadParser
    /// The head whose body is being read, with its decoder.
    private var pendingHead: HTTPRequestHead?
    private var bodyDecoder: HTTPBodyDecoder?
    private var headTimerStarted = false
    private var remote: String?

    init(context: HTTPLoopContext) {
        self.context = context
        parser = HTTPHeadParser(limits: context.limits)
    }

    func received(_ bytes: UnsafeRawBufferPointer, on connection: Connection) -> Int {
        var offset = 0
        while offset < bytes.count && !connection.isClosing && !connection.isOutputFull {
            let rest = UnsafeRawBufferPointer(rebasing: bytes[offset...])
            if bodyDecoder != nil {
                switch bodyDecoder!.feed(rest) {
                case .success(let used):
                    offset += used
                    if bodyDecoder!.isDone {
                        finishBody(on: connection)
                    } else {
                        connection.setTimeout(seconds: context.limits.bodyTimeout)
                    }
                case .failure(let e):
                    refuse(e, on: connection)
                    return bytes.count
                }
                continue
            }
            switch parser.parse(rest) {
            case .needMore:
                if !headTimerStarted {
                    headTimerStarted = true
                    connection.setTimeout(seconds: context.limits.headerTimeout)
                }
                return offset
            case .skip(let n):
                offset += n
            case .error(let e):
                refuse(e, on: connection)
                return bytes.count
            case .head(let head, let consumed):
                offset += consumed
                headTimerStarted = false
                if head.framing == .none {
                    respond(to: head, body: [], trailers: nil, on: connection)
                } else {
                    if head.expectContinue && offset == bytes.count {
                        connection.write { $0.append("HTTP/1.1 100 Continue\r\n\r\n") }
                        connection.flush()
                    }
                    pendingHead = head
                    bodyDecoder = HTTPBodyDecoder(framing: head.framing, limits: context.limits)
                    connection.setTimeout(seconds: context.limits.bodyTimeout)
                }
            }
        }
        return offset
    }

    private func finishBody(on connection: Connection) {
        guard let head = pendingHead, var decoder = bodyDecoder else { return }
        pendingHead = nil
        bodyDecoder = nil
        let trailers = decoder.trailers
        respond(to: head, body: decoder.takeBody(), trailers: trailers.isEmpty ? nil : trailers, on: connection)
    }

    private func respond(to head: HTTPRequestHead, body: [UInt8], trailers: [UInt8]?, on connection: Connection) {
        if remote == nil { remote = connection.remoteAddress }
        let request = Request(
            method: head.method, version: head.version, path: head.path,
            query: QueryParameters(storage: head.bytes, range: head.query),
            headers: HeaderFields(lines: head.bytes, range: head.fields),
            trailers: trailers.map { HeaderFields(lines: $0, range: 0..<$0.count) } ?? .empty,
            body: body, host: head.host, remoteAddress: remote!, isSecure: false,
            target: String(decoding: head.bytes[head.target], as: UTF8.self))
        let response = context.responder.respond(to: request)
        let keepAlive = head.keepAlive && !connection.loop.isStopping
        write(response, headOnly: head.method == .head, keepAlive: keepAlive, version: head.version, on: connection)
        if keepAlive {
            connection.setTimeout(seconds: context.limits.keepAliveTimeout)
        } else {
            connection.closeAfterFlush()
        }
    }

    private func write(_ response: Response, headOnly: Bool, keepAlive: Bool, version: HTTPVersion, on connection: Connection) {
        let bodyLength = response.status.forbidsBody ? nil : response.body.count
        let date = context.dates.dateLine(now: connection.loop.wallClock)
        let logger = context.logger
        connection.write { out in
            HTTPResponseEncoder.encodeHead(response, bodyLength: bodyLength ?? (response.status.forbidsBody ? nil : 0),
                                           keepAlive: keepAlive, version: version, date: date, into: out) { name in
                logger.warning("dropped response header field with CR, LF or NUL, or an invalid name", metadata: ["field": "\(name)"])
            }
        }
        if !headOnly && !response.status.forbidsBody {
            connection.write(response.body)
        }
    }

    /// Answers a request the codec refuses, then closes (lingering, so the client reads it).
    private func refuse(_ error: HTTPError, on connection: Connection) {
        context.logger.debug("refused request", metadata: ["status": "\(error.status.code)", "reason": "\(error.reason)"])
        var body = Chunks()
        body.append(unescaped: "\(error.status.code) \(error.status.reason): \(error.reason)\n")
        let response = Response(status: error.status, contentType: Response.textType, body: body)
        write(response, headOnly: false, keepAlive: false, version: .http1_1, on: connection)
        pendingHead = nil
        bodyDecoder = nil
        connection.closeAfterFlush(linger: true)
    }

    func peerClosed(_ connection: Connection) {
        // Answer what was received in full, then close.
        connection.closeAfterFlush()
    }

    func timedOut(_ connection: Connection) {
        if parser.hasPartialHead || bodyDecoder != nil {
            refuse(HTTPError(.requestTimeout, "request not received in time"), on: connection)
        } else {
            connection.close()
        }
    }

    func shutdownRequested(_ connection: Connection) -> Bool {
        let idle = !parser.hasPartialHead && bodyDecoder == nil && connection.pendingOutput == 0
        if !idle && bodyDecoder == nil && !parser.hasPartialHead {
            connection.closeAfterFlush()
        }
        return idle
    }

    func closed(_ connection: Connection) {}
}
