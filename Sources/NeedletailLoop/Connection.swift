import CNeedletailLinux
import Glibc
import NeedletailBytes

/// What a protocol (HTTP/1.1, FastCGI) does with a connection's bytes. One instance per
/// connection, called on the connection's loop only.
public protocol ConnectionHandler: AnyObject {
    /// Bytes have arrived. `bytes` holds every byte not yet consumed, oldest first; the return
    /// value says how many of them the handler consumed. The rest are offered again, with more
    /// after them, on the next call. The pointer is valid only during the call.
    func received(_ bytes: UnsafeRawBufferPointer, on connection: Connection) -> Int
    /// The peer closed its sending side. Anything already received has been offered.
    func peerClosed(_ connection: Connection)
    /// The connection's deadline (see `Connection.setTimeout`) passed.
    func timedOut(_ connection: Connection)
    /// The loop is stopping: finish what is in flight, then close. Return `true` when the
    /// connection is idle and may be closed at once.
    func shutdownRequested(_ connection: Connection) -> Bool
    /// The connection is closed and about to be forgotten.
    func closed(_ connection: Connection)
    /// Everything queued has been written, after `Connection.notifyWhenDrained` was set (a codec
    /// that stopped producing while the output was full goes on).
    func outputDrained(_ connection: Connection)
}

extension ConnectionHandler {
    public func outputDrained(_ connection: Connection) {}
}

/// One accepted socket on a loop: its unconsumed input, its queued output, its deadline.
///
/// Used only on its loop's thread.
public final class Connection {
    /// The socket.
    public let fd: Int32
    /// The loop that owns this connection. (`unowned(unsafe)`: a loop outlives every connection
    /// it owns, and a checked reference costs an atomic operation per use.)
    public unowned(unsafe) let loop: EventLoop
    // State other modules read or set is a computed property over a private stored one: an
    // `@exclusivity(unchecked)` stored property accessed directly from another module is
    // checked there all the same (swift_beginAccess, about 75 instructions per access; four
    // per hello request, docs/PERFORMANCE.md).

    /// The protocol driving this connection; set right after accept.
    public var handler: (any ConnectionHandler)! {
        get { _handler }
        set { _handler = newValue }
    }
    @exclusivity(unchecked) private var _handler: (any ConnectionHandler)!
    /// Listener-specific value (which listener accepted this, e.g. its protocol config).
    public let listenerIndex: Int

    // Loop-confined state. Runtime exclusivity checks are off for these properties
    // (docs/PERFORMANCE.md); the loop never calls a handler from
    // inside a mutating access to them (see TimerWheel.advance, which returns a list).
    let token: EPollToken
    @exclusivity(unchecked) var peer = sockaddr_storage()
    @exclusivity(unchecked) var input: ByteBuffer?
    @exclusivity(unchecked) var output = OutputQueue()
    /// The phase and what epoll is asked for (see `ConnectionState`, which has the rules).
    @exclusivity(unchecked) var state = ConnectionState()
    /// Whether the connection is closed.
    public var isClosed: Bool { state.isClosed }

    // Timer wheel bookkeeping.
    @exclusivity(unchecked) var deadline = 0
    @exclusivity(unchecked) var wheelSlot = -1
    @exclusivity(unchecked) var wheelIndex = 0
    @exclusivity(unchecked) var slottedFor = 0

    /// Set by the handler when the connection is between requests (keep-alive, nothing in
    /// flight): when the process runs out of file descriptors the loop closes the oldest such
    /// connections to let new clients in, as nginx does with its reusable connections.
    public var isIdle: Bool {
        get { _isIdle }
        set { _isIdle = newValue }
    }
    @exclusivity(unchecked) private var _isIdle: Bool = false

    /// While its loop hands over to a successor process: once everything queued is written,
    /// the connection goes to the successor instead of being closed (a FastCGI connection the
    /// web server keeps open, an idle keep-alive connection), so that no request the client
    /// sends meanwhile meets a closed socket.
    public var handOffWhenIdle: Bool {
        get { _handOffWhenIdle }
        set { _handOffWhenIdle = newValue }
    }
    @exclusivity(unchecked) private var _handOffWhenIdle: Bool = false

    /// True while the handler's `received` runs: work for this connection that arrives then
    /// (a stream finished by the handler itself) must wait for a loop task, or `received`
    /// would be entered again.
    public var isInHandler: Bool { _isInHandler }
    @exclusivity(unchecked) var _isInHandler: Bool = false

    /// When `true`, the loop stops reading from this socket (the handler is waiting for
    /// something else, e.g. a parked response). Set back to `false` with `resumeReading()`.
    public var readingPaused: Bool { state.readingPaused }

    init(fd: Int32, loop: EventLoop, token: EPollToken, listenerIndex: Int) {
        self.fd = fd
        self.loop = loop
        self.token = token
        self.listenerIndex = listenerIndex
    }

    /// The connection's TLS state when its listener speaks TLS.
    @exclusivity(unchecked) var tls: TLSStream?

    /// Whether the connection is encrypted (accepted by a TLS listener).
    public var isSecure: Bool { tls != nil }

    /// The TLS version and cipher agreed on ("TLSv1.3 TLS_AES_256_GCM_SHA384"); nil for a
    /// plain connection.
    public var tlsDescription: String? { tls?.negotiated }

    /// The protocol TLS's ALPN chose ("h2", "http/1.1", "" for none); nil for a plain connection.
    public var negotiatedProtocol: String? { tls?.alpn }

    /// Reads like read(2), through TLS when the connection has it.
    @inline(__always)
    func readSocket(_ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
        guard let tls else { return Glibc.read(fd, buffer, count) }
        let r = tls.read(buffer, count)
        if r < 0 && tls.readWantsWrite { state.wantWritable = true }
        return r
    }

    /// The peer's IP address as text ("" for unix sockets).
    public var remoteAddress: String {
        withUnsafePointer(to: &peer) { SocketAddress.peerDescription($0) }
    }

    /// Calls `body` with the peer's address as accept(2) returned it.
    @inline(__always)
    public func withPeer<R>(_ body: (UnsafePointer<sockaddr_storage>) -> R) -> R {
        withUnsafePointer(to: &peer) { body($0) }
    }

    // MARK: Socket options

    @exclusivity(unchecked) private var noDelaySet = false

    /// Turns off Nagle's algorithm (TCP only), once. A codec calls it when a connection stays
    /// open for more requests: a lone response is one write and needs no such option, so a
    /// connection that closes after one answer saves the system call (nginx does the same).
    public func setNoDelay() {
        guard !noDelaySet else { return }
        noDelaySet = true
        let family = Int32(peer.ss_family)
        guard family == AF_INET || family == AF_INET6 else { return }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, 4)
    }

    // MARK: Output

    /// Bytes queued and not yet accepted by the kernel.
    public var pendingOutput: Int { output.pending }

    /// Whether the queued output is over the loop's per-connection cap. A handler should stop
    /// consuming requests while this is true; the loop offers the unconsumed bytes again once
    /// the output has drained.
    public var isOutputFull: Bool { output.pending >= loop.configuration.maxQueuedOutput }

    /// Appends to the connection's own output buffer (status lines, headers, small bodies).
    @inline(__always)
    public func write(_ body: (ByteBuffer) -> Void) {
        output.append(body)
    }

    /// Queues a copy of `bytes`.
    public func write(copying bytes: UnsafeRawBufferPointer) {
        output.append(copying: bytes)
    }

    /// Queues a chunk chain (static chunks by address, large dynamic runs by reference).
    public func write(file: FileRegion) {
        output.append(file: file.file, offset: file.offset, count: file.count)
    }

    /// Queues a chain of chunks.
    public func write(_ chunks: Chunks) {
        output.append(chunks)
    }

    /// Set by a handler that stopped producing output while it was full: its `outputDrained`
    /// is called once everything queued has been written (then this is false again).
    @exclusivity(unchecked) public var notifyWhenDrained = false

    /// Writes what is queued now; the rest goes out when the socket is writable again.
    public func flush() {
        guard !isClosed else { return }
        if output.isEmpty {
            finishIfFlushed()
            return
        }
        let written = if let tls { output.write(tls: tls) } else { output.write(fd: fd, iov: loop.iovecs) }
        switch written {
        case .done:
            state.wantWritable = false
            if state.throttled { state.throttled = false }
            if notifyWhenDrained {
                notifyWhenDrained = false
                handler.outputDrained(self)
                if isClosed { return }
                if !output.isEmpty { return }  // its own flush has dealt with it
            }
            finishIfFlushed()
            if !isClosed { updateInterest() }
        case .wouldBlock:
            state.wantWritable = true
            if output.pending >= loop.configuration.maxQueuedOutput { state.throttled = true }
            updateInterest()
        case .failed:
            close()
        }
    }

    private func finishIfFlushed() {
        guard output.isEmpty else { return }
        switch state.outputFlushed() {
        case .stay: break
        case .close:
            if handOffWhenIdle && loop.handOffConnection(self) != .notIdle { return }
            close()
        case .shutWriteAndLinger:
            // Let the client read the answer before unread input turns into a reset.
            tls?.notifyClose()
            shutdown(fd, Int32(SHUT_WR))
            loop.setDeadline(self, seconds: loop.configuration.lingerSeconds)
            updateInterest()
        }
    }

    /// Closes once everything queued has been written. With `linger`, the write side is shut
    /// first and input is drained for a moment, so that unread request bytes do not make the
    /// kernel reset the connection before the client has read the response.
    public func closeAfterFlush(linger: Bool = false) {
        state.closeAfterFlush(linger: linger)
    }

    /// Whether `closeAfterFlush` was called.
    public var isClosing: Bool { state.isClosing }

    // MARK: Input

    /// Stops reading from the socket until `resumeReading()`.
    public func pauseReading() {
        state.readingPaused = true
        updateInterest()
    }

    /// Starts reading again, first offering any bytes already received.
    public func resumeReading() {
        state.readingPaused = false
        guard !isClosed else { return }
        pump()
        if !isClosed { updateInterest() }
    }

    /// Writes what is queued and, while the output is empty and unconsumed input is waiting
    /// (requests held back while the output was full), offers that input again. Call after
    /// writing from outside a `received` call (a task handed to the loop, a stream).
    public func pump() {
        while true {
            flush()
            guard !isClosed, output.isEmpty, !state.readingPaused, let buf = input, buf.count > 0 else { return }
            let before = buf.count
            deliverBuffered()
            if isClosed || (input?.count ?? 0) == before { flush(); return }
        }
    }

    /// Offers unconsumed input to the handler again (after a pause or when output drained).
    func deliverBuffered() {
        guard let buf = input, buf.count > 0, !state.readingPaused, !isClosed else { return }
        _isInHandler = true
        let used = handler.received(buf.bytes, on: self)
        _isInHandler = false
        if isClosed { return }
        buf.removeFirst(used)
    }

    /// Sets the connection's deadline `seconds` from now (0 clears it); on expiry the handler's
    /// `timedOut` is called.
    public func setTimeout(seconds: Int) {
        loop.setDeadline(self, seconds: seconds)
    }

    // MARK: Interest and closing

    /// Brings the epoll registration in line with what the connection wants (see
    /// `ConnectionState.wantedEvents`); a registration the kernel refuses closes the connection.
    func updateInterest(afterInput: Bool = false) {
        guard !isClosed else { return }
        // Reading may go on: input OpenSSL holds would not wake epoll.
        if let tls, state.mayRead, tls.hasPending { loop.queueTLSRead(self) }
        let want = state.wantedEvents(afterInput: afterInput)
        if want != state.interest {
            guard loop.modify(self, events: want) else {
                close()
                return
            }
            state.interest = want
        }
    }

    /// Closes the socket now; queued output is dropped.
    public func close() {
        guard !isClosed else { return }
        state.phase = .closed
        output.discard()
        input = nil
        // close_notify while the socket is still open; OpenSSL's state goes with it.
        tls?.notifyClose()
        tls = nil
        loop.forget(self)
        handler?.closed(self)
        handler = nil
    }
}
