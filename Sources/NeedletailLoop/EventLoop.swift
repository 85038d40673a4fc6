import CNeedletailLinux
import Glibc
import NeedletailBytes
import NeedletailPOSIX
import Synchronization

/// Settings shared by every loop of a server.
public struct LoopConfiguration: Sendable {
    /// Per-connection cap on queued output; over it the loop stops reading from that client.
    public var maxQueuedOutput = 256 * 1024
    /// Per-connection cap on received-but-unconsumed input; over it the loop stops reading.
    public var maxBufferedInput = 64 * 1024
    /// How long a closing connection drains unread input before it is closed.
    public var lingerSeconds = 2
    /// Connections accepted per readiness event (teepeedee2 used 16).
    public var acceptBurst = 16
    /// Idle keep-alive connections closed at a time when descriptors run out.
    public var idleDrainBatch = 32
    public init() {}
}

/// Something that logs loop-level events (accept failures, fd exhaustion). The loop target does
/// not depend on a logging library; the server plugs one in.
public typealias LoopLogger = @Sendable (_ level: LoopLogLevel, _ message: String) -> Void

/// Severity of a loop log line.
public enum LoopLogLevel: Sendable { case debug, info, warning, error }

/// What other threads hand a loop: a closure (`execute`) or a job of a task isolated to it.
enum LoopWork {
    case closure(@Sendable () -> Void)
    case job(UnownedJob, LoopJobKind)
}

/// Makes the protocol handler for a newly accepted connection.
public typealias HandlerFactory = (Connection) -> any ConnectionHandler

/// One epoll loop on one thread: accepts on its listeners, reads, calls handlers, writes,
/// fires deadlines, runs work handed over from other threads.
///
/// All state is confined to the loop's thread except `execute(_:)`, which any thread may call;
/// that is why the class is `@unchecked Sendable`.
public final class EventLoop: @unchecked Sendable {
    public let configuration: LoopConfiguration
    /// Index of this loop in its group.
    public let index: Int

    private let epfd: Int32
    var epollFD: Int32 { epfd }
    /// Descriptors watched for `LoopWatcher`s (database sockets).
    @exclusivity(unchecked) var watchers = LoopWatchers()
    /// Run once just before the loop next waits (`runBeforeWaiting(_:)`).
    @exclusivity(unchecked) var beforeWaiting: [any LoopDeferred] = []
    /// Per-loop state of other targets (`local(for:make:)`).
    @exclusivity(unchecked) var locals: [ObjectIdentifier: AnyObject] = [:]
    private let wakeFD: Int32
    @exclusivity(unchecked) private var listeners:
        [(socket: ListeningSocket, factory: HandlerFactory, registered: Bool, readAtAccept: Bool, events: UInt32, tls: TLSContext?)] = []
    /// While handing over to a successor process: gives it an idle connection (see `beginHandover`).
    @exclusivity(unchecked) private var handOff: ((Connection) -> Bool)?
    /// Runs once when a handover has no connection left.
    @exclusivity(unchecked) private var drained: (() -> Void)?
    /// Whether the loop is handing its connections to a successor (`beginHandover`).
    public var isHandingOver: Bool { _isHandingOver }
    @exclusivity(unchecked) private var _isHandingOver: Bool = false
    @exclusivity(unchecked) private var connections: [Connection?] = []
    @exclusivity(unchecked) private var generation: UInt32 = 0
    @exclusivity(unchecked) private var wheel: TimerWheel
    private let readBuffer: UnsafeMutableRawPointer
    private let readBufferSize = 64 * 1024
    let iovecs: UnsafeMutablePointer<iovec>
    @exclusivity(unchecked) private var reserveFD: Int32 = -1
    @exclusivity(unchecked) private var lastFDExhaustionLog = 0
    private let log: LoopLogger
    // Loop-confined properties below skip runtime exclusivity checks (see Connection).
    private let tasks = Mutex<[LoopWork]>([])
    /// Jobs enqueued on the loop's own thread: only it touches this list (see `LoopExecutor`).
    @exclusivity(unchecked) private var localJobs: [(UnownedJob, LoopJobKind)] = []
    /// The batch `runLocalJobs` is running (swapped with `localJobs`: no copy, no allocation).
    @exclusivity(unchecked) private var runningJobs: [(UnownedJob, LoopJobKind)] = []
    /// Request tasks parked for reuse (`startTask`).
    let requestTasks = LoopTasks()
    /// Millisecond timers (task sleeps, deadlines of suspended requests).
    @exclusivity(unchecked) var timers = LoopTimers()
    /// The loop as an executor, and the isolation of its tasks.
    public private(set) var executor: LoopExecutor!
    public private(set) var taskExecutor: LoopTaskExecutor!
    public private(set) var actor: LoopActor!
    /// The thread running the loop (0 before `run()`).
    private let owner = Atomic<UInt>(0)

    /// Seconds on a monotonic clock, updated once per loop iteration.
    public var now: Int { _now }
    @exclusivity(unchecked) private var _now: Int = 0
    /// Wall-clock seconds since the epoch, updated once per loop iteration.
    public var wallClock: Int { _wallClock }
    @exclusivity(unchecked) private var _wallClock: Int = 0
    /// Number of open connections.
    public var connectionCount: Int { _connectionCount }
    @exclusivity(unchecked) private var _connectionCount: Int = 0
    /// Whether `shutdown` has begun: handlers answer in-flight requests with `Connection: close`.
    public var isStopping: Bool { _isStopping }
    @exclusivity(unchecked) private var _isStopping: Bool = false
    @exclusivity(unchecked) private var stopDeadline = 0
    @exclusivity(unchecked) private var running = false

    /// Makes a loop; it runs when `run()` is called on the thread that will own it.
    public init(
        index: Int = 0, configuration: LoopConfiguration = LoopConfiguration(), log: @escaping LoopLogger = { _, _ in }
    ) throws(SocketError) {
        self.index = index
        self.configuration = configuration
        self.log = log
        epfd = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epfd >= 0 else { throw SocketError("epoll_create1", errno: errno) }
        wakeFD = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        guard wakeFD >= 0 else {
            let e = errno
            Glibc.close(epfd)
            throw SocketError("eventfd", errno: e)
        }
        readBuffer = UnsafeMutableRawPointer.allocate(byteCount: readBufferSize, alignment: 16)
        iovecs = UnsafeMutablePointer<iovec>.allocate(capacity: Int(NT_IOV_MAX))
        wheel = TimerWheel(now: 0)
        updateClock()
        wheel = TimerWheel(now: now)
        reserveFD = open("/dev/null", O_RDONLY | O_CLOEXEC)
        do {
            try control(EPOLL_CTL_ADD, wakeFD, events: nt_epollin(), token: .wake)
        } catch {
            // Not every field is set yet, so deinit will not run: release what is open here.
            Glibc.close(epfd)
            Glibc.close(wakeFD)
            if reserveFD >= 0 { Glibc.close(reserveFD) }
            readBuffer.deallocate()
            iovecs.deallocate()
            throw SocketError(error.call, errno: error.errno)
        }
        executor = LoopExecutor(loop: self)
        taskExecutor = LoopTaskExecutor(loop: self)
        actor = LoopActor(loop: self)
    }

    /// epoll_ctl(2), its failure thrown (the kernel refuses to watch an fd: out of memory, or
    /// the per-user watch limit).
    private func control(_ op: Int32, _ fd: Int32, events: UInt32, token: EPollToken) throws(SystemCallError) {
        var ev = epoll_event()
        ev.events = events
        ev.data.u64 = token.raw
        _ = try SystemCall.retrying("epoll_ctl \(op == EPOLL_CTL_ADD ? "add" : op == EPOLL_CTL_MOD ? "modify" : "delete") fd \(fd)") {
            epoll_ctl(epfd, op, fd, &ev)
        }
    }

    deinit {
        Glibc.close(epfd)
        Glibc.close(wakeFD)
        if reserveFD >= 0 { Glibc.close(reserveFD) }
        readBuffer.deallocate()
        iovecs.deallocate()
    }

    /// Adds a listener; `factory` makes the handler of each connection it accepts.
    /// `exclusive` (for a socket shared by several loops) wakes one loop per connection.
    /// `readAtAccept`: try to read as soon as a connection is accepted (for listeners with
    /// TCP_DEFER_ACCEPT, where the first bytes are normally there already).
    /// `tls`: every connection it accepts speaks TLS with these settings (the handler sees the
    /// decrypted bytes; `Connection.isSecure` is true).
    /// A listener the kernel refuses to watch is an error (the loop then never accepts on it).
    public func addListener(
        _ socket: ListeningSocket, exclusive: Bool = false, readAtAccept: Bool = false, tls: TLSContext? = nil,
        factory: @escaping HandlerFactory
    ) throws(SystemCallError) {
        let events = nt_epollin() | (exclusive ? nt_epollexclusive() : 0)
        try control(EPOLL_CTL_ADD, socket.fd, events: events, token: .listener(listeners.count))
        listeners.append((socket, factory, true, readAtAccept, events, tls))
    }

    /// Whether the caller is running on this loop's thread.
    public var isCurrentThread: Bool { owner.load(ordering: .acquiring) == UInt(pthread_self()) }
    var ownerThread: UInt { owner.load(ordering: .acquiring) }

    /// Runs `task` now when called on this loop's thread (from another connection's handler), else like
    /// `execute`. Answering many parked requests from one notify this way writes and recycles
    /// each answer's buffer before the next is rendered, instead of holding them all until the
    /// queued tasks run (docs/PERFORMANCE.md).
    /// `connection` must not be in its handler's `received` (then the task waits, as with
    /// `execute`).
    public func executeSoonOrNow(for connection: Connection, _ task: @escaping @Sendable () -> Void) {
        if runsNow(for: connection) { task() } else { execute(task) }
    }

    /// Whether `executeSoonOrNow(for: connection)` would run its task at once: on this loop's
    /// thread, outside the connection's own handler.
    @inline(__always)
    public func runsNow(for connection: Connection) -> Bool { isCurrentThread && !connection.isInHandler }

    /// Runs `task` on this loop's thread soon. Safe from any thread.
    public func execute(_ task: @escaping @Sendable () -> Void) {
        let wasEmpty = tasks.withLock { q in
            q.append(.closure(task))
            return q.count == 1
        }
        if wasEmpty {
            var one: UInt64 = 1
            _ = Glibc.write(wakeFD, &one, 8)
        }
    }

    /// A job of a task isolated to this loop (`LoopExecutor.enqueue`): on the loop's own thread
    /// it joins the local list, run before the loop waits again; from another thread it goes
    /// through the locked queue and wakes the loop.
    func enqueue(_ job: UnownedJob, on kind: LoopJobKind) {
        if isCurrentThread {
            localJobs.append((job, kind))
            return
        }
        let wasEmpty = tasks.withLock { q in
            q.append(.job(job, kind))
            return q.count == 1
        }
        if wasEmpty {
            var one: UInt64 = 1
            _ = Glibc.write(wakeFD, &one, 8)
        }
    }

    /// Runs the jobs enqueued on this thread, and those they enqueue, until there are none.
    @inline(__always)
    func runLocalJobs() {
        while !localJobs.isEmpty {
            swap(&localJobs, &runningJobs)
            for i in runningJobs.indices { run(runningJobs[i].0, runningJobs[i].1) }
            runningJobs.removeAll(keepingCapacity: true)
        }
    }

    /// Where the list of this thread's jobs ends now (see `runJobEnqueued(since:)`).
    func markLocalJobs() -> Int { localJobs.count }

    /// Runs at once the one task job enqueued on this thread since `mark`, if exactly that
    /// happened (a task just started or resumed from loop code): the task goes on inside the
    /// caller instead of at the loop's next turn.
    func runJobEnqueued(since mark: Int) {
        guard localJobs.count == mark + 1, case .task = localJobs[mark].1 else { return }
        let job = localJobs.removeLast().0
        run(job, .task)
    }

    /// Runs a job with the executor it was enqueued on.
    @inline(__always)
    private func run(_ job: UnownedJob, _ kind: LoopJobKind) {
        switch kind {
        case .serial: job.runSynchronously(isolatedTo: executor.asUnownedSerialExecutor(), taskExecutor: taskExecutor.asUnownedTaskExecutor())
        case .task: job.runSynchronously(on: taskExecutor.asUnownedTaskExecutor())
        }
    }

    /// Runs `action` on this loop's thread once `milliseconds` have passed (call on the loop's
    /// thread); the handle cancels it.
    public func schedule(after milliseconds: Int, _ action: @escaping () -> Void) -> LoopTimerID {
        LoopTimerID(id: timers.add(after: UInt64(max(0, milliseconds)) * 1_000_000, action))
    }

    /// Cancels a timer from `schedule` that has not fired (call on the loop's thread).
    public func cancel(_ timer: LoopTimerID) { timers.cancel(timer.id) }

    /// Begins a graceful stop: stop accepting, close idle connections, let the others finish
    /// within `grace` seconds, then close what is left and return from `run()`. Safe from any thread.
    public func shutdown(grace: Int) {
        execute { [self] in beginShutdown(grace: grace) }
    }

    private func beginShutdown(grace: Int) {
        if isHandingOver {
            // The successor serves: what is left here is closed as a stop would.
            _isHandingOver = false
            handOff = nil
            drained = nil
        }
        guard !isStopping else { return }
        stopAccepting(grace: grace)
        for case let c? in connections where !c.isClosed {
            if c.handler.shutdownRequested(c) { c.close() }
        }
    }

    private func stopAccepting(grace: Int) {
        _isStopping = true
        stopDeadline = now + grace
        for i in listeners.indices where listeners[i].registered {
            do {
                try control(EPOLL_CTL_DEL, listeners[i].socket.fd, events: 0, token: .listener(i))
            } catch {
                log(.warning, "\(error) while stopping (the listener is ignored from now on)")
            }
            listeners[i].registered = false
        }
    }

    /// Begins handing this loop's clients to a successor process that shares its listening
    /// sockets (a live upgrade): the loop stops accepting (the successor accepts from the same
    /// sockets: nothing queued is lost); idle connections, and those that become idle after
    /// their last answer, go to `handOff` (which sends the descriptor; false if it could not);
    /// requests in flight finish, answered with `Connection: close`; after `grace` seconds the
    /// rest are closed. Then `drained` runs on the loop's thread, and the loop keeps running
    /// until `shutdown` (the successor serves) or `resumeAccepting` (it failed). Safe from any thread.
    public func beginHandover(
        grace: Int, handOff: @escaping @Sendable (Connection) -> Bool, drained: @escaping @Sendable () -> Void
    ) {
        execute { [self] in
            guard !isStopping else { return }
            _isHandingOver = true
            self.handOff = handOff
            self.drained = drained
            stopAccepting(grace: grace)
            for case let c? in connections where !c.isClosed {
                c.handOffWhenIdle = true
                if c.handler.shutdownRequested(c) {
                    if handOffConnection(c) == .notIdle { c.close() }
                } else if !c.isClosing {
                    c.handOffWhenIdle = false  // busy: its answer says Connection: close
                }
            }
        }
    }

    /// Undoes `beginHandover` (the successor failed): listens again; `done` runs on the loop's
    /// thread once it no longer hands anything over. Safe from any thread.
    public func resumeAccepting(done: @escaping @Sendable () -> Void = {}) {
        execute { [self] in
            defer { done() }
            guard isHandingOver else { return }
            _isHandingOver = false
            _isStopping = false
            handOff = nil
            drained = nil
            for i in listeners.indices where !listeners[i].registered {
                do {
                    try control(EPOLL_CTL_ADD, listeners[i].socket.fd, events: listeners[i].events, token: .listener(i))
                    listeners[i].registered = true
                } catch {
                    log(.error, "\(error): cannot listen again on \(listeners[i].socket.address)")
                }
            }
        }
    }

    /// What `handOffConnection` did.
    enum HandOffResult { case handed, notIdle, later }

    /// Gives `c` to the successor if the loop is handing over and `c` holds no unread input or
    /// unwritten output, and closes it here; `later` when the control socket is full (tried
    /// again in a moment: the successor is reading).
    func handOffConnection(_ c: Connection) -> HandOffResult {
        // A TLS connection's state lives in this process's OpenSSL: it cannot be handed over
        // (an idle one is closed, as nginx closes idle keep-alive connections on a reload).
        guard isHandingOver, let handOff, c.tls == nil, (c.input?.count ?? 0) == 0, c.output.isEmpty, !c.state.peerHalfClosed
        else { return .notIdle }
        guard handOff(c) else {
            _ = schedule(after: 2) { [self] in
                guard !c.isClosed else { return }
                guard isHandingOver else {
                    // The successor failed meanwhile: the connection stays, unless it was closing.
                    if c.isClosing && c.output.isEmpty { c.close() }
                    return
                }
                if handOffConnection(c) == .notIdle { c.close() }
            }
            return .later
        }
        // Explicitly: the socket outlives this process's descriptor, and with it the registration.
        try? control(EPOLL_CTL_DEL, c.fd, events: 0, token: c.token)
        c.close()
        return .handed
    }

    /// Takes over a connection a predecessor handed over (`beginHandover` there), as if
    /// `listener` had just accepted it. Safe from any thread.
    public func adopt(fd: Int32, listener: Int) {
        execute { [self] in
            var storage = sockaddr_storage()
            var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
            _ = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &len) }
            }
            guard listener < listeners.count else {
                Glibc.close(fd)
                return
            }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            register(fd: fd, peer: storage, listener: listener, readNow: true)
        }
    }

    // MARK: Running

    /// Runs until a graceful stop completes. Call on the thread that owns the loop.
    public func run() {
        owner.store(UInt(pthread_self()), ordering: .releasing)
        LoopThread.set(self)
        defer { LoopThread.set(nil) }
        running = true
        let maxEvents = 512
        let events = UnsafeMutablePointer<epoll_event>.allocate(capacity: maxEvents)
        defer { events.deallocate() }
        while running {
            repeat {
                runLocalJobs()
                if !tlsPending.isEmpty { readPendingTLS() }
                if !beforeWaiting.isEmpty { runBeforeWaiting() }
            } while !localJobs.isEmpty || !tlsPending.isEmpty
            var timeout: Int32 = (connectionCount > 0 || isStopping) ? 1000 : -1
            if let next = timers.millisecondsToNext() { timeout = timeout < 0 ? Int32(min(next, 1000)) : min(timeout, Int32(min(next, 1000))) }
            let n = epoll_wait(epfd, events, Int32(maxEvents), timeout)
            updateClock()
            if n < 0 && errno != EINTR {
                log(.error, "epoll_wait failed: \(String(cString: strerror(errno)))")
                break
            }
            if n > 0 {
                for i in 0..<Int(n) {
                    dispatch(events[i].events, token: EPollToken(raw: events[i].data.u64))
                }
            }
            if !timers.isEmpty {
                for action in timers.takeDue() { action() }
            }
            if now > wheel.lastTick {
                for conn in wheel.advance(to: now) where !conn.isClosed {
                    if conn.state.isLingering { conn.close() } else { conn.handler.timedOut(conn) }
                    if !conn.isClosed { conn.pump() }
                }
            }
            if isStopping && (connectionCount == 0 || now >= stopDeadline) {
                for case let c? in connections where !c.isClosed { c.close() }
                if !isHandingOver {
                    running = false
                } else if let done = drained {
                    drained = nil
                    done()
                }
            }
        }
        endParkedTasks()
    }

    private func updateClock() {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC_COARSE, &ts)
        _now = ts.tv_sec
        clock_gettime(CLOCK_REALTIME_COARSE, &ts)
        _wallClock = ts.tv_sec
    }

    @inline(__always)
    private func dispatch(_ events: UInt32, token: EPollToken) {
        let fd: Int
        switch token.kind {
        case .listener(let index):
            acceptBurst(index)
            return
        case .wake:
            runTasks()
            return
        case .watch(let slot, let generation):
            dispatchWatch(events, slot: slot, generation: generation)
            return
        case .connection(let f):
            fd = f
        }
        guard fd < connections.count, let c = connections[fd], c.token == token, !c.isClosed else {
            return  // stale: the fd was closed (and maybe reused) earlier in this batch
        }
        if events & nt_epollerr() != 0 {
            c.close()
            return
        }
        if events & nt_epollout() != 0 {
            if let t = c.tls, t.readWantsWrite {
                // A TLS read (the handshake) waited for the socket to take its answer.
                t.readWantsWrite = false
                if c.output.isEmpty { c.state.wantWritable = false }
                readable(c)
                return
            }
            c.pump()
            if c.isClosed { return }
        }
        if events & nt_epollrdhup() != 0 && c.state.readingPaused && !c.state.peerHalfClosed {
            // The peer closed while we were not reading (a stream or a parked response).
            c.state.peerHalfClosed = true
            c.handler.peerClosed(c)
            if !c.isClosed { c.pump() }
            c.updateInterest(afterInput: true)
            return
        }
        if events & (nt_epollin() | nt_epollhup()) != 0 {
            readable(c)
        }
    }

    private func runTasks() {
        var counter: UInt64 = 0
        _ = Glibc.read(wakeFD, &counter, 8)
        let batch = tasks.withLock { q in
            let b = q
            q.removeAll()
            return b
        }
        for work in batch {
            switch work {
            case .closure(let task): task()
            case .job(let job, let kind): run(job, kind)
            }
        }
    }

    private func readable(_ c: Connection) {
        if c.state.isLingering {
            while true {
                let r = Glibc.read(c.fd, readBuffer, readBufferSize)
                if r > 0 { continue }
                if r < 0 && (errno == EAGAIN || errno == EINTR) { return }
                c.close()
                return
            }
        }
        // Read until the kernel has no more, a few times at most (fairness between connections).
        var refused = false  // input is waiting that the connection does not want now
        for _ in 0..<4 {
            if c.isClosed { break }
            if !c.state.mayRead {
                refused = true
                break
            }
            let r: Int
            let viaBuffer: Bool
            if let buf = c.input, buf.count > 0 {
                if buf.count >= configuration.maxBufferedInput {
                    // The handler refuses to consume (waiting on output); stop reading for now.
                    c.state.throttled = true
                    refused = true
                    break
                }
                let room = min(readBufferSize, configuration.maxBufferedInput - buf.count)
                var got = 0
                buf.appendWriting(maxCount: room) { dst in
                    let n = c.readSocket(dst.baseAddress, room)
                    got = n
                    return max(n, 0)
                }
                r = got
                viaBuffer = true
            } else {
                r = c.readSocket(readBuffer, readBufferSize)
                viaBuffer = false
            }
            if r > 0 {
                if viaBuffer {
                    c.deliverBuffered()
                } else {
                    let bytes = UnsafeRawBufferPointer(start: readBuffer, count: r)
                    c._isInHandler = true
                    let used = c.handler.received(bytes, on: c)
                    c._isInHandler = false
                    if c.isClosed { return }
                    if used < r {
                        let keep = c.input ?? ByteBuffer(capacity: max(r - used, 1024))
                        keep.append(UnsafeRawBufferPointer(rebasing: bytes[used...]))
                        c.input = keep
                    }
                }
                if c.isClosed { return }
                // TLS: at most one record per read; OpenSSL may hold more (read ahead).
                if let t = c.tls {
                    if !t.hasPending && r < TLSStream.recordSize { break }
                } else if r < readBufferSize {
                    break
                }
            } else if r == 0 {
                c.state.peerHalfClosed = true
                c.handler.peerClosed(c)
                break
            } else {
                let e = errno
                if e == EAGAIN || e == EINTR { break }
                if let failure = c.tls?.failure {
                    // A failed handshake or a bad record: scanners and old clients, so debug
                    // (nginx logs these at info, below its default level).
                    log(.debug, "TLS connection from \(c.remoteAddress) failed: \(failure)")
                    if c.tls?.sentPlainHTTP == true {
                        // As nginx does (its 497): say so in plain HTTP, once, best effort.
                        _ = EventLoop.plainHTTPOnTLSPort.withUnsafeBytes { Glibc.write(c.fd, $0.baseAddress, $0.count) }
                    }
                }
                c.close()
                return
            }
        }
        if c.isClosed { return }
        c.pump()
        // Input is waiting that is not wanted now: read interest goes (level-triggered epoll).
        c.updateInterest(afterInput: refused)
        if let t = c.tls, !c.isClosed, t.hasPending { queueTLSRead(c) }
    }

    static let plainHTTPOnTLSPort: [UInt8] = {
        let body = "400 Bad Request: this port speaks HTTPS; use an https:// URL\n"
        return Array(
            ("HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: \(body.utf8.count)\r\n"
                + "Connection: close\r\n\r\n" + body).utf8)
    }()

    /// TLS connections with input inside OpenSSL that epoll does not report (read ahead), to
    /// be read before the loop next waits.
    @exclusivity(unchecked) private var tlsPending: [Connection] = []

    /// Reads `c` again before the loop waits, if it may read then (called when OpenSSL holds
    /// input: after a read that stopped early, when reading resumes).
    func queueTLSRead(_ c: Connection) {
        guard let t = c.tls, !t.queuedForPending else { return }
        t.queuedForPending = true
        tlsPending.append(c)
    }

    private func readPendingTLS() {
        let batch = tlsPending
        tlsPending.removeAll(keepingCapacity: true)
        for c in batch {
            guard let t = c.tls else { continue }
            t.queuedForPending = false
            // One that may not read now is queued again when it may (Connection.updateInterest).
            if !c.isClosed, c.state.mayRead, t.hasPending { readable(c) }
        }
    }

    private func acceptBurst(_ index: Int) {
        guard index < listeners.count, listeners[index].registered else { return }
        let lfd = listeners[index].socket.fd
        for _ in 0..<configuration.acceptBurst {
            var storage = sockaddr_storage()
            var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let fd = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    nt_accept4(lfd, $0, &len, Int32(NT_SOCK_NONBLOCK) | Int32(NT_SOCK_CLOEXEC))
                }
            }
            if fd < 0 {
                let e = errno
                switch e {
                case EAGAIN, EWOULDBLOCK: return
                case EINTR, ECONNABORTED, EPROTO: continue
                case EMFILE, ENFILE:
                    if closeIdleConnections(error: e) > 0 { continue }
                    shedOneConnection(listenerFD: lfd, error: e)
                    continue
                default:
                    log(.error, "accept failed: \(String(cString: strerror(e)))")
                    return
                }
            }
            register(fd: fd, peer: storage, listener: index)
        }
    }

    /// Out of file descriptors: closes up to `idleDrainBatch` idle keep-alive connections, those
    /// whose keep-alive deadline comes first (the longest idle), so that the waiting clients get
    /// their descriptors. Returns how many were closed.
    private func closeIdleConnections(error: Int32) -> Int {
        var idle: [(deadline: Int, connection: Connection)] = []
        for case let c? in connections where c.isIdle && !c.isClosed && c.output.isEmpty {
            idle.append((c.deadline, c))
        }
        guard !idle.isEmpty else { return 0 }
        idle.sort { $0.deadline < $1.deadline }
        let victims = idle.prefix(configuration.idleDrainBatch)
        for (_, c) in victims { c.close() }
        if now - lastFDExhaustionLog >= 10 {
            lastFDExhaustionLog = now
            log(
                .warning,
                "out of file descriptors (\(String(cString: strerror(error)))); closed \(victims.count) idle keep-alive connections to accept new ones (raise ulimit -n)"
            )
        }
        return victims.count
    }

    /// Out of file descriptors: accept the waiting connection with the reserved fd and close it,
    /// so the listener does not stay readable and spin the loop.
    private func shedOneConnection(listenerFD: Int32, error: Int32) {
        if now - lastFDExhaustionLog >= 10 {
            lastFDExhaustionLog = now
            log(
                .warning,
                "out of file descriptors (\(String(cString: strerror(error)))); refusing new connections until some close (raise ulimit -n)"
            )
        }
        if reserveFD >= 0 {
            Glibc.close(reserveFD)
            reserveFD = -1
        }
        let fd = nt_accept4(listenerFD, nil, nil, Int32(NT_SOCK_CLOEXEC))
        if fd >= 0 { Glibc.close(fd) }
        reserveFD = open("/dev/null", O_RDONLY | O_CLOEXEC)
    }

    private func register(fd: Int32, peer: sockaddr_storage, listener: Int, readNow: Bool = false) {
        generation &+= 1
        let token = EPollToken.connection(fd: fd, generation: generation)
        let c = Connection(fd: fd, loop: self, token: token, listenerIndex: listener)
        c.peer = peer
        if let context = listeners[listener].tls {
            guard let stream = TLSStream(context: context, fd: fd) else {
                log(.error, "cannot make a TLS connection (out of memory?): connection closed")
                Glibc.close(fd)
                return
            }
            c.tls = stream
            // A handshake is several writes in a row (the server's flight, then the tickets,
            // then the first answer): with Nagle each waited for the client's ACK of the one
            // before. nginx turns it off before its handshakes too.
            c.setNoDelay()
        }
        c.handler = listeners[listener].factory(c)
        let i = Int(fd)
        if i >= connections.count {
            connections.append(contentsOf: repeatElement(nil, count: i - connections.count + 1 + connections.count / 2))
        }
        connections[i] = c
        _connectionCount += 1
        do {
            try control(EPOLL_CTL_ADD, fd, events: c.state.interest, token: token)
        } catch {
            log(.error, "\(error): connection closed")
            c.close()
            return
        }
        if isStopping, c.handler.shutdownRequested(c) {
            c.close()
            return
        }
        // With TCP_DEFER_ACCEPT the request is usually there already: read it now and save a
        // trip through epoll_wait (if not, the read says EAGAIN and epoll tells us later).
        if readNow || listeners[listener].readAtAccept { readable(c) }
    }

    // MARK: Called by Connection

    /// Changes what epoll reports for `c`; false (logged) when the kernel refuses, and the
    /// caller closes the connection: it would otherwise wait for events that never come.
    func modify(_ c: Connection, events: UInt32) -> Bool {
        do {
            try control(EPOLL_CTL_MOD, c.fd, events: events, token: c.token)
            return true
        } catch {
            log(.error, "\(error): connection closed")
            return false
        }
    }

    func forget(_ c: Connection) {
        wheel.remove(c)
        // No EPOLL_CTL_DEL: closing the only descriptor of the socket removes it from epoll.
        Glibc.close(c.fd)
        let i = Int(c.fd)
        if i < connections.count, connections[i] === c { connections[i] = nil }
        _connectionCount -= 1
    }

    func setDeadline(_ c: Connection, seconds: Int) {
        guard !c.isClosed else { return }
        wheel.set(c, deadline: seconds > 0 ? now + seconds : 0)
    }
}
