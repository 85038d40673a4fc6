import CNghttp2
import Glibc
import NeedletailBytes
import NeedletailHTTP
import NeedletailLoop

/// HTTP/2 on one TLS connection (ALPN `h2`), with nghttp2 doing the framing, HPACK, flow
/// control and the protocol's checks, through its memory API: the loop's decrypted bytes go in
/// with `mem_recv`, what it has to send comes out of `mem_send` into the connection's queue.
/// Each stream is a `Request` like the other codecs make; answers are whole bodies, files,
/// async handlers' answers and streams (server-sent events), each on its own HTTP/2 stream.
///
/// Used only on its connection's loop.
final class HTTP2Connection: ConnectionHandler, StreamCodec {
    let context: LoopContext
    unowned let connection: Connection
    private var session: OpaquePointer?
    private var streams: [Int32: Stream] = [:]
    /// Inside `nghttp2_session_mem_recv` (and so inside its callbacks).
    private var receiving = false
    /// Seconds an idle connection (no stream open) is kept.
    static let idleSeconds = 60
    /// Most streams open at once (SETTINGS_MAX_CONCURRENT_STREAMS).
    static let maxConcurrentStreams: UInt32 = 100

    /// One request and its answer.
    final class Stream {
        let id: Int32
        var method = "", path = "", authority = "", scheme = ""
        /// Header lines as HTTP/1.1 writes them ("name: value\r\n"), what `HeaderFields` reads.
        var lines: [UInt8] = []
        var cookies: [String] = []
        var headerBytes = 0
        var body: [UInt8] = []
        /// The request's fields, for compressing the answer (kept only when compression is on).
        var requestHeaders = HeaderFields.empty
        /// The answer's body bytes and how many are sent; `complete` once no more will come.
        var out: [UInt8] = []
        var sent = 0
        var complete = true
        var deferred = false
        var submitted = false
        /// An async handler's task is running (suspended) for this stream.
        var awaiting = false
        var task: LoopTask?
        var deadline: LoopTimerID?
        var sink: LoopStreamSink?
        /// The access log's and the counts' record (when requests are recorded).
        var observed: Observed?
        var route: String?
        init(id: Int32) { self.id = id }
    }

    init(context: LoopContext, connection: Connection) {
        self.context = context
        self.connection = connection
        var callbacks: OpaquePointer?
        guard nghttp2_session_callbacks_new(&callbacks) == 0, let callbacks else { return }
        defer { nghttp2_session_callbacks_del(callbacks) }
        nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, h2BeginHeaders)
        nghttp2_session_callbacks_set_on_header_callback(callbacks, h2Header)
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, h2Data)
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, h2FrameReceived)
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, h2StreamClosed)
        var option: OpaquePointer?
        guard nghttp2_option_new(&option) == 0, let option else { return }
        defer { nghttp2_option_del(option) }
        // The 2023 rapid-reset attack: a burst of 1,000 resets, then 33 a second (nghttp2's own
        // later defaults); past it the connection is closed with GOAWAY.
        nghttp2_option_set_stream_reset_rate_limit(option, 1000, 33)
        nghttp2_option_set_max_settings(option, 32)
        // The 2024 CONTINUATION flood (CVE-2024-28182): at most 8 CONTINUATION frames per
        // header block, past which the connection is closed (nghttp2's default, said here).
        nghttp2_option_set_max_continuations(option, 8)
        var s: OpaquePointer?
        guard nghttp2_session_server_new2(&s, callbacks, Unmanaged.passUnretained(self).toOpaque(), option) == 0 else { return }
        session = s
        var settings = [
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue), value: Self.maxConcurrentStreams),
            nghttp2_settings_entry(
                settings_id: Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue), value: UInt32(clamping: context.limits.maxHeaderBytes)),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_ENABLE_PUSH.rawValue), value: 0),
        ]
        nghttp2_submit_settings(s, UInt8(NGHTTP2_FLAG_NONE.rawValue), &settings, settings.count)
    }

    deinit { if let session { nghttp2_session_del(session) } }

    static func from(_ userData: UnsafeMutableRawPointer?) -> HTTP2Connection {
        Unmanaged<HTTP2Connection>.fromOpaque(userData!).takeUnretainedValue()
    }

    // MARK: ConnectionHandler

    func received(_ bytes: UnsafeRawBufferPointer, on connection: Connection) -> Int {
        guard let session else {
            connection.close()
            return bytes.count
        }
        connection.isIdle = false
        receiving = true
        let r = nghttp2_session_mem_recv(session, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count)
        receiving = false
        if r < 0 {
            // A fatal error (a flood nghttp2 refuses, a bad preface): the session is not to be
            // used again, and has queued nothing; the GOAWAY is written here, then the close.
            let code = Int32(r)
            context.logger.debug("HTTP/2 connection refused: \(String(cString: nghttp2_strerror(code)))")
            let calm = code == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS.rawValue || code == NGHTTP2_ERR_FLOODED.rawValue
            let last = UInt32(max(nghttp2_session_get_last_proc_stream_id(session), 0))
            let error: UInt32 = calm ? UInt32(NGHTTP2_ENHANCE_YOUR_CALM.rawValue) : UInt32(NGHTTP2_PROTOCOL_ERROR.rawValue)
            var frame: [UInt8] = [0, 0, 8, 7, 0, 0, 0, 0, 0]
            for v in [last, error] { frame += [UInt8(v >> 24 & 0xff), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
            cancelAll()
            nghttp2_session_del(session)
            self.session = nil
            frame.withUnsafeBytes { connection.write(copying: $0) }
            connection.flush()
            connection.closeAfterFlush()
            return bytes.count
        }
        send()
        return bytes.count
    }

    func peerClosed(_ connection: Connection) {
        cancelAll()
        connection.close()
    }

    func timedOut(_ connection: Connection) {
        guard let session else { return connection.close() }
        // Idle: GOAWAY, then close once it is out.
        nghttp2_session_terminate_session(session, UInt32(NGHTTP2_NO_ERROR.rawValue))
        send()
        connection.closeAfterFlush()
    }

    func shutdownRequested(_ connection: Connection) -> Bool {
        guard let session else { return true }
        // GOAWAY with the last stream taken: those open are answered, no new one starts.
        nghttp2_submit_goaway(
            session, UInt8(NGHTTP2_FLAG_NONE.rawValue), nghttp2_session_get_last_proc_stream_id(session),
            UInt32(NGHTTP2_NO_ERROR.rawValue), nil, 0)
        send()
        if streams.isEmpty { connection.closeAfterFlush() }
        return false
    }

    func closed(_ connection: Connection) { cancelAll() }

    func outputDrained(_ connection: Connection) { send() }

    private func cancelAll() {
        for (_, s) in streams { cancel(s) }
        streams.removeAll()
    }

    private func cancel(_ s: Stream) {
        s.task?.cancel()
        s.sink?.cancel()
        if let d = s.deadline { connection.loop.cancel(d) }
        if s.awaiting { context.suspended -= 1 }
        s.awaiting = false
        s.task = nil
        s.deadline = nil
    }

    /// Moves what nghttp2 has to send into the connection's queue and writes it; closes once
    /// neither side has anything more to say.
    func send() {
        // nghttp2 must not be asked to send from inside its receive callbacks (an answer made
        // there, by a handler that never suspended, goes out when `mem_recv` has returned).
        guard let session, !connection.isClosed, !receiving else { return }
        while true {
            var data: UnsafePointer<UInt8>? = nil
            let n = nghttp2_session_mem_send(session, &data)
            if n < 0 {
                connection.close()
                return
            }
            if n == 0 { break }
            connection.write(copying: UnsafeRawBufferPointer(start: data, count: n))
            if connection.isOutputFull {
                // A client that does not read: no more from nghttp2 until the queue drains
                // (its flow-control windows alone could let a client pile up whole bodies).
                connection.notifyWhenDrained = true
                break
            }
        }
        connection.flush()
        if nghttp2_session_want_read(session) == 0 && nghttp2_session_want_write(session) == 0 {
            connection.closeAfterFlush()
        } else if streams.isEmpty {
            connection.isIdle = true
            connection.setTimeout(seconds: Self.idleSeconds)
        } else {
            connection.setTimeout(seconds: 0)
        }
    }

    // MARK: Requests

    func beginHeaders(_ id: Int32) {
        streams[id] = Stream(id: id)
    }

    /// One field of a request's head; false refuses the stream (too large).
    func header(_ id: Int32, name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let s = streams[id] else { return true }
        s.headerBytes += name.count + value.count + 32
        if s.headerBytes > context.limits.maxHeaderBytes { return false }
        if name.first == UInt8(ascii: ":") {
            let v = String(decoding: value, as: UTF8.self)
            switch String(decoding: name, as: UTF8.self) {
            case ":method": s.method = v
            case ":path": s.path = v
            case ":authority": s.authority = v
            case ":scheme": s.scheme = v
            default: break
            }
            return true
        }
        // RFC 9113 8.2.3: cookies may come split; they are one field again for the app.
        if name.elementsEqual("cookie".utf8) {
            s.cookies.append(String(decoding: value, as: UTF8.self))
            return true
        }
        s.lines.append(contentsOf: name)
        s.lines.append(contentsOf: ": ".utf8)
        s.lines.append(contentsOf: value)
        s.lines.append(contentsOf: "\r\n".utf8)
        return true
    }

    /// Body bytes; false refuses the stream (over the body limit).
    func data(_ id: Int32, _ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let s = streams[id] else { return true }
        if s.body.count + bytes.count > context.limits.maxBodyBytes {
            respond(s, with: Router.errorPage(.contentTooLarge, detail: "The request body is too large."))
            return true
        }
        s.body.append(contentsOf: bytes)
        return true
    }

    /// The request is complete (its END_STREAM): answer it.
    func requestComplete(_ id: Int32) {
        guard let s = streams[id], !s.submitted else { return }
        let request: Request
        switch makeRequest(s) {
        case .success(let r): request = r
        case .failure(let e):
            respond(s, with: Router.errorPage(.badRequest, detail: e.reason))
            return
        }
        if context.compression != nil { s.requestHeaders = request.headers }
        if context.observing { s.observed = Observed(request, start: context.clock()) }
        let response = context.produce(request, secure: connection.isSecure)
        if case .pending(let pending) = response.body {
            s.route = response.route
            s.observed?.suspend()
            startAsync(s, pending)
            return
        }
        respond(s, with: response, head: request.method == .head)
    }

    func streamClosed(_ id: Int32) {
        guard let s = streams.removeValue(forKey: id) else { return }
        cancel(s)
    }

    private func makeRequest(_ s: Stream) -> Result<Request, RequestTarget.Refusal> {
        guard !s.path.isEmpty, let method = HTTPMethod(rawValue: s.method) else {
            return .failure(RequestTarget.Refusal(reason: "a request without :path, or a method not supported"))
        }
        var storage = Array(s.path.utf8)
        let target = 0..<storage.count
        var parsed: RequestTarget
        do throws(RequestTarget.Refusal) {
            parsed = try storage.withUnsafeBufferPointer { b throws(RequestTarget.Refusal) in try RequestTarget.parse(b, target) }
        } catch {
            return .failure(error)
        }
        if parsed.rawPath.isEmpty {
            let start = storage.count
            storage.append(UInt8(ascii: "/"))
            parsed.rawPath = start..<storage.count
        }
        var host: Range<Int>? = nil
        if !s.authority.isEmpty {
            let start = storage.count
            storage += s.authority.utf8
            host = start..<storage.count
        }
        let fieldsStart = storage.count
        if host != nil {
            storage += "host: ".utf8
            storage += s.authority.utf8
            storage += "\r\n".utf8
        }
        storage += s.lines
        if !s.cookies.isEmpty {
            storage += "cookie: ".utf8
            storage += s.cookies.joined(separator: "; ").utf8
            storage += "\r\n".utf8
        }
        return .success(
            Request(
                method: method, version: .http1_1, storage: storage, target: target, rawPath: parsed.rawPath,
                decodedPath: parsed.decodedPath, host: host, query: QueryParameters(storage: storage, range: parsed.query),
                headers: HeaderFields(lines: storage, range: fieldsStart..<storage.count), body: s.body,
                remote: connection.withPeer(RemoteAddress.init(peer:)), isSecure: connection.isSecure))
    }

    // MARK: Answers

    private func startAsync(_ s: Stream, _ pending: PendingReply) {
        guard context.suspended < context.maxSuspended else {
            var busy = Router.errorPage(.serviceUnavailable, detail: "Too many requests are waiting; try again in a moment.")
            busy.addHeader("Retry-After", "1")
            respond(s, with: busy)
            return
        }
        context.suspended += 1
        let id = s.id
        let handle = OnLoop(codec: self)
        s.awaiting = true
        // The task runs here until its first suspension: one that never suspends has answered
        // before `startTask` returns, and needs neither its handle nor a deadline.
        let task = connection.loop.startTask {
            let (response, failure) = await pending.produce()
            handle.codec?.asyncAnswered(id, response, failure: failure)
        }
        guard s.awaiting else { return }
        s.task = task
        s.deadline = connection.loop.schedule(after: pending.deadline) { [weak self] in self?.asyncTimedOut(id) }
    }

    /// The codec, for a task's answer (on the loop's thread).
    final class OnLoop: @unchecked Sendable {
        weak var codec: HTTP2Connection?
        init(codec: HTTP2Connection) { self.codec = codec }
    }

    private func asyncAnswered(_ id: Int32, _ response: Response?, failure: String?) {
        if let failure { context.logger.error("\(failure)") }
        guard let s = streams[id], s.awaiting else { return }
        s.awaiting = false
        s.task = nil
        context.suspended -= 1
        if let d = s.deadline { connection.loop.cancel(d) }
        s.deadline = nil
        guard let response else {
            // Cancelled: the stream is reset.
            if let session { nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), id, UInt32(NGHTTP2_CANCEL.rawValue)) }
            send()
            return
        }
        s.observed?.resume()
        respond(s, with: response, head: s.method == "HEAD")
        send()
    }

    private func asyncTimedOut(_ id: Int32) {
        guard let s = streams[id], s.awaiting else { return }
        s.awaiting = false
        s.task?.cancel()
        s.task = nil
        s.deadline = nil
        context.suspended -= 1
        var late = Router.errorPage(.serviceUnavailable, detail: "This took too long; try again later.")
        late.addHeader("Retry-After", "5")
        respond(s, with: late)
        send()
    }

    /// Submits `response` on stream `s`: its head now, its body as nghttp2 asks for it.
    private func respond(_ s: Stream, with response: consuming Response, head: Bool = false) {
        guard let session, !s.submitted else { return }
        s.submitted = true
        var length: Int? = nil
        var produce: (@Sendable (ResponseStream) -> Void)? = nil
        var coding: StaticString? = nil
        if !response.loadFileBody() { context.logger.error("a file answer could not be read") }
        switch response.takeBody() {
        case .chunks(var c):
            if context.compression != nil { coding = context.compress(&response, &c, requestHeaders: s.requestHeaders) }
            if !head { s.out = c.bytes }
            length = c.count
            c.recycle()
        case .stream(let p):
            produce = p
            s.complete = false
        case .file, .pending:
            length = 0
        }
        let bodyless = head || response.status.forbidsBody
        let fields = headFields(response, length: bodyless && !head ? nil : length, coding: coding)
        var names: [[UInt8]] = [], values: [[UInt8]] = []
        for (n, v) in fields {
            names.append(Array(n.utf8))
            values.append(Array(v.utf8))
        }
        let rv: Int32 = names.withNV(values) { nv in
            if bodyless {
                return nghttp2_submit_response(session, s.id, nv.baseAddress, nv.count, nil)
            }
            var provider = nghttp2_data_provider()
            provider.read_callback = h2ReadBody
            return nghttp2_submit_response(session, s.id, nv.baseAddress, nv.count, &provider)
        }
        if rv != 0 { context.logger.debug("HTTP/2 answer not submitted: \(String(cString: nghttp2_strerror(rv)))") }
        if var o = s.observed.take() {
            o.route = response.route ?? s.route
            context.observe(
                o, status: response.status.code, bodyBytes: bodyless ? 0 : (length ?? 0), route: o.route,
                ready: context.timing ? context.clock() : 0, now: connection.loop.wallClock, stream: produce != nil)
        }
        if let produce, !bodyless {
            let sink = LoopStreamSink(connection: connection, codec: self, streamID: s.id)
            s.sink = sink
            connection.setNoDelay()
            produce(ResponseStream(sink: sink))
        }
    }

    /// The answer's fields, lower-case, without HTTP/1.1's connection fields.
    /// `coding`: compression's fields, as HTTP/1.1 lines ("Vary: Accept-Encoding\r\n…").
    private func headFields(_ response: borrowing Response, length: Int?, coding: StaticString?) -> [(String, String)] {
        var out: [(String, String)] = [(":status", String(response.status.code))]
        if let coding {
            for line in coding.description.split(separator: "\r\n") {
                guard let colon = line.firstIndex(of: ":") else { continue }
                out.append((line[..<colon].lowercased(), line[line.index(after: colon)...].trimmingPrefix(" ").description))
            }
        }
        let date = context.dates.dateLine(now: connection.loop.wallClock)
        // "Date: …\r\n" as HTTP/1.1 writes it.
        if date.count > 8 { out.append(("date", String(decoding: date[6..<(date.count - 2)], as: UTF8.self))) }
        if let ct = response.contentType, FieldCheck.isSafe(value: ct) { out.append(("content-type", ct)) }
        if let length { out.append(("content-length", String(length))) }
        var given: Set<String> = []
        let all = response.headers + (response.fixedFields?.fields ?? [])
        for (name, value) in all {
            let lower = name.lowercased()
            guard FieldCheck.isSafe(name: name, value: value) else {
                context.droppedField(name)
                continue
            }
            switch lower {
            case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "content-length": continue
            default: break
            }
            given.insert(lower)
            out.append((lower, value))
        }
        for (name, value) in (connection.isSecure ? context.secureDefaults : context.defaults).fields where !given.contains(name.lowercased()) {
            out.append((name.lowercased(), value))
        }
        return out
    }

    /// nghttp2 asks for up to `length` bytes of stream `id`'s body.
    func readBody(_ id: Int32, into buffer: UnsafeMutablePointer<UInt8>, length: Int, flags: UnsafeMutablePointer<UInt32>) -> Int {
        guard let s = streams[id] else {
            flags.pointee |= UInt32(NGHTTP2_DATA_FLAG_EOF.rawValue)
            return 0
        }
        let n = min(length, s.out.count - s.sent)
        if n > 0 {
            s.out.withUnsafeBufferPointer { UnsafeMutableRawPointer(buffer).copyMemory(from: $0.baseAddress! + s.sent, byteCount: n) }
            s.sent += n
            if s.sent == s.out.count {
                s.out.removeAll(keepingCapacity: true)
                s.sent = 0
            }
        }
        if s.out.isEmpty && s.complete {
            flags.pointee |= UInt32(NGHTTP2_DATA_FLAG_EOF.rawValue)
            return n
        }
        if n == 0 {
            s.deferred = true
            return Int(NGHTTP2_ERR_DEFERRED.rawValue)
        }
        return n
    }

    // MARK: StreamCodec (server-sent events and other streamed bodies)

    func frame(_ chunks: Chunks, of sink: LoopStreamSink, on connection: Connection) {
        guard let s = streams[sink.streamID] else { return }
        s.out += chunks.bytes
        resume(s)
    }

    func end(_ sink: LoopStreamSink, on connection: Connection) {
        guard let s = streams[sink.streamID] else { return }
        s.complete = true
        resume(s)
    }

    private func resume(_ s: Stream) {
        guard let session else { return }
        if s.deferred {
            s.deferred = false
            nghttp2_session_resume_data(session, s.id)
        }
        send()
    }
}

extension Array where Element == [UInt8] {
    /// Calls `body` with nghttp2 name-value pairs pointing into `self` (names) and `values`.
    fileprivate func withNV<R>(_ values: [[UInt8]], _ body: (UnsafeMutableBufferPointer<nghttp2_nv>) -> R) -> R {
        var flat: [UInt8] = []
        var spans: [(Int, Int, Int, Int)] = []
        for (n, v) in zip(self, values) {
            let ns = flat.count
            flat += n
            let vs = flat.count
            flat += v
            spans.append((ns, n.count, vs, v.count))
        }
        return flat.withUnsafeMutableBufferPointer { f in
            var nv = spans.map { s in
                nghttp2_nv(
                    name: f.baseAddress! + s.0, value: f.baseAddress! + s.2, namelen: s.1, valuelen: s.3,
                    flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue))
            }
            return nv.withUnsafeMutableBufferPointer { body($0) }
        }
    }
}

// The C callbacks: each finds its codec through the session's user data.

private let h2BeginHeaders: nghttp2_on_begin_headers_callback = { _, frame, user in
    guard let frame, frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue),
        frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST
    else { return 0 }
    HTTP2Connection.from(user).beginHeaders(frame.pointee.hd.stream_id)
    return 0
}

private let h2Header: nghttp2_on_header_callback = { _, frame, name, namelen, value, valuelen, _, user in
    guard let frame, frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue) else { return 0 }
    let ok = HTTP2Connection.from(user).header(
        frame.pointee.hd.stream_id, name: UnsafeBufferPointer(start: name, count: namelen),
        value: UnsafeBufferPointer(start: value, count: valuelen))
    return ok ? 0 : Int32(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
}

private let h2Data: nghttp2_on_data_chunk_recv_callback = { _, _, id, data, len, user in
    _ = HTTP2Connection.from(user).data(id, UnsafeBufferPointer(start: data, count: len))
    return 0
}

private let h2FrameReceived: nghttp2_on_frame_recv_callback = { _, frame, user in
    guard let frame else { return 0 }
    let type = frame.pointee.hd.type
    let ended = frame.pointee.hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
    if ended && (type == UInt8(NGHTTP2_HEADERS.rawValue) || type == UInt8(NGHTTP2_DATA.rawValue)) {
        HTTP2Connection.from(user).requestComplete(frame.pointee.hd.stream_id)
    }
    return 0
}

private let h2StreamClosed: nghttp2_on_stream_close_callback = { _, id, _, user in
    HTTP2Connection.from(user).streamClosed(id)
    return 0
}

private let h2ReadBody: nghttp2_data_source_read_callback = { _, id, buffer, length, flags, _, user in
    guard let buffer, let flags else { return 0 }
    return HTTP2Connection.from(user).readBody(id, into: buffer, length: length, flags: flags)
}
