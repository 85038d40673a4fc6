import CNeedletailLinux
import Glibc
import Logging
import NeedletailLoop
import NeedletailPOSIX
import Synchronization

/// How a running server hands over to a new build of itself (`kill -USR2`), as nginx does its
/// binary upgrade; the whole design is in docs/UPGRADE.md.
///
/// The old process starts the executable at its own path with every listening socket
/// inherited (`LISTEN_FDS`/`LISTEN_FDNAMES`: the same sockets, so nothing queued on them is
/// lost and nothing is refused) and a control socket (`NEEDLETAIL_UPGRADE_FD`). Once the new
/// process says it has started (its flags are good), the old one stops accepting, ends parked
/// polls and event streams (`drain`), answers what is in flight with `Connection: close`, and
/// passes its idle connections over the control socket (SCM_RIGHTS). Drained, it releases
/// what one process holds at a time (`release`: the store's log) and sends `state` (the
/// sessions); the new process opens its store, starts serving, and says so; the old one exits.
/// If the new process fails first, the old one takes everything back (`reclaim`) and serves on.
public struct UpgradeSettings: Sendable {
    /// Seconds the new process has to say it has started before it is killed and the old
    /// process serves on.
    public var startTimeout = 30
    /// Seconds from the store's release to the new process serving; past it the old process
    /// kills it and takes everything back.
    public var takeOverTimeout = 60
    /// The executable to start. Default: the path this process was started from, so that a
    /// new build installed there is what takes over.
    public var executable: String? = nil
    /// Runs when the handover begins (any thread): end parked polls and event streams so that
    /// their pages reconnect to the new process (`LiveAppCore.endSubscriptions`).
    public var drain: @Sendable () -> Void = {}
    /// Runs once nothing is in flight: let go of what the new process must open after this
    /// one (`Store.suspend`). A throw stops the upgrade.
    public var release: @Sendable () throws -> Void = {}
    /// The bytes the new process gets (`Predecessor.awaitRelease`): the sessions, say.
    public var state: @Sendable () -> [UInt8] = { [] }
    /// The new process failed after `drain` or `release`: undo them (`Store.resume`).
    public var reclaim: @Sendable () throws -> Void = {}
    public init() {}
}

/// Messages on the control socket (SOCK_SEQPACKET: one message per send), first byte.
enum UpgradeMessage: UInt8 {
    /// New → old: started, flags parsed (payload: the pid).
    case hello = 0x48  // H
    /// Old → new: a connection (the descriptor; payload: h or f, its protocol).
    case connection = 0x43  // C
    /// Old → new: the state (a memfd holding it).
    case state = 0x53  // S
    /// Old → new: drained, the store released.
    case released = 0x52  // R
    /// New → old: serving.
    case serving = 0x56  // V
    /// New → old: gave up (payload: why).
    case failed = 0x46  // F
}

/// The control socket's environment variable (its descriptor number).
let upgradeVariable = "NEEDLETAIL_UPGRADE_FD"

/// The path this process was started from, read at start: argv[0] when it names a file (made
/// absolute; a symbolic link stays one, so that a deploy that moves a `current` link is
/// followed), else the kernel's `/proc/self/exe` (a rebuild replaces the file: "(deleted)").
let startedFrom: String? = {
    let first = CommandLine.arguments.first ?? ""
    if first.contains("/") {
        if first.hasPrefix("/") { return first }
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getcwd(&buffer, buffer.count) != nil else { return nil }
        let cwd = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return cwd + "/" + first
    }
    var buffer = [UInt8](repeating: 0, count: 4096)
    let n = buffer.withUnsafeMutableBytes { readlink("/proc/self/exe", $0.baseAddress!.assumingMemoryBound(to: CChar.self), $0.count) }
    guard n > 0 else { return nil }
    let path = String(decoding: buffer[0..<n], as: UTF8.self)
    return path.hasSuffix(" (deleted)") ? String(path.dropLast(10)) : path
}()

/// Sends one message, with a descriptor if `fd` >= 0. Never blocks (a loop may call it).
@discardableResult
func sendControl(_ socket: Int32, _ type: UpgradeMessage, _ payload: [UInt8] = [], fd: Int32 = -1) -> Bool {
    let bytes = [type.rawValue] + payload
    return bytes.withUnsafeBytes { nt_send_with_fd(socket, $0.baseAddress, $0.count, fd, Int32(MSG_DONTWAIT) | Int32(MSG_NOSIGNAL)) } >= 0
}

/// One received message; nil at the end (the peer is gone), or after `timeout` milliseconds.
func receiveControl(_ socket: Int32, timeout: Int32) -> (type: UpgradeMessage, payload: [UInt8], fd: Int32)?? {
    var p = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
    while true {
        let r = poll(&p, 1, timeout)
        if r < 0 && errno == EINTR { continue }
        if r == 0 { return .some(nil) }  // timed out
        break
    }
    var buffer = [UInt8](repeating: 0, count: 4096)
    var fd: Int32 = -1
    var n: Int
    repeat {
        n = buffer.withUnsafeMutableBytes { nt_receive_with_fd(socket, $0.baseAddress, $0.count, &fd, 0) }
    } while n < 0 && errno == EINTR
    guard n > 0, let type = UpgradeMessage(rawValue: buffer[0]) else {
        if fd >= 0 { close(fd) }
        return nil
    }
    return .some((type, Array(buffer[1..<n]), fd))
}

/// Text for a child's wait status.
func describe(status: Int32) -> String {
    let signal = status & 0x7f
    if signal == 0 { return "exited with status \((status >> 8) & 0xff)" }
    return "was killed by signal \(signal)"
}

/// The old process's side of an upgrade (one at a time), run on a thread of its own: it
/// waits, which no loop may.
final class Upgrader: Sendable {
    let running = Atomic<Bool>(false)
    /// Set once a new process serves: the listeners are its now (a unix socket is not removed).
    let handedOver = Atomic<Bool>(false)

    func begin(server: Server, logger: Logger) {
        guard running.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else {
            logger.warning("SIGUSR2: an upgrade is already under way; ignored")
            return
        }
        do {
            _ = try POSIXThread.spawn(name: "upgrade", detached: true) { [self] in
                run(server: server, logger: logger)
                running.store(false, ordering: .releasing)
            }
        } catch {
            logger.error("SIGUSR2: cannot start the upgrade's thread: \(error)")
            running.store(false, ordering: .releasing)
        }
    }

    private func run(server: Server, logger: Logger) {
        let settings = server.configuration.upgrade
        guard let path = settings.executable ?? startedFrom else {
            logger.error("upgrade failed: cannot tell which executable this process was started from")
            return
        }
        guard access(path, X_OK) == 0 else {
            logger.error("upgrade failed: \(path) is not an executable file (\(String(cString: strerror(errno)))); this process serves on")
            return
        }
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(NT_SOCK_CLOEXEC), 0, &pair) == 0 else {
            logger.error("upgrade failed: socketpair: \(String(cString: strerror(errno)))")
            return
        }
        let control = pair[0]
        // Closed only once no loop can send on it any more (after a failed handover, when each
        // loop has stopped handing over); after a successful one the process exits.
        var closeControl = true
        defer { if closeControl { close(control) } }
        let child: pid_t
        do {
            child = try spawnSuccessor(path: path, sockets: server.namedSockets, control: pair[1])
        } catch {
            close(pair[1])
            logger.error("upgrade failed: \(error); this process serves on")
            return
        }
        close(pair[1])
        logger.notice("SIGUSR2: started \(path) as pid \(child) to take over")
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        SystemdNotify.send("RELOADING=1\nMONOTONIC_USEC=\(Int(now.tv_sec) * 1_000_000 + now.tv_nsec / 1000)")
        var succeeded = false
        // systemd hears again that this process serves, unless the new one does now.
        defer { if !succeeded { SystemdNotify.send("READY=1") } }

        func reap(_ why: String, kill force: Bool) {
            var status: Int32 = 0
            if force { kill(child, SIGKILL) }
            var reaped = waitpid(child, &status, WNOHANG)
            if reaped == 0 {
                // It closed the control socket and is on its way out: give it a moment.
                for _ in 0..<100 where reaped == 0 {
                    usleep(10_000)
                    reaped = waitpid(child, &status, WNOHANG)
                }
            }
            let how = reaped == child ? describe(status: status) : "is still running"
            logger.error("upgrade failed: the new process (pid \(child)) \(why) and \(how); this process serves on")
        }

        // 1. It starts and says hello (its flags were good), or fails.
        guard case .some(let hello?) = receiveControl(control, timeout: Int32(settings.startTimeout * 1000)), hello.type == .hello else {
            reap("did not start", kill: true)
            return
        }
        // 2. Hand over: stop accepting, end parked subscriptions, pass idle connections.
        logger.notice("pid \(child) has started; handing the connections over")
        settings.drain()
        let loops = server.loops
        let drained = Atomic<Int>(0)
        for loop in loops {
            let kinds = server.listenerKinds(on: loop.index)
            loop.beginHandover(
                grace: server.configuration.shutdownGrace,
                handOff: { connection in
                    let index = connection.listenerIndex
                    let kind: UInt8 = index < kinds.count && kinds[index] == .fastCGI ? 0x66 : 0x68
                    return sendControl(control, .connection, [kind], fd: connection.fd)
                },
                drained: { drained.add(1, ordering: .releasing) })
        }
        func takeBack(_ why: String, kill force: Bool) {
            reap(why, kill: force)
            do { try settings.reclaim() } catch { logger.critical("cannot take back what was released: \(error)") }
            let resumed = Atomic<Int>(0)
            for loop in loops { loop.resumeAccepting { resumed.add(1, ordering: .releasing) } }
            while resumed.load(ordering: .acquiring) < loops.count { usleep(1000) }
        }
        while drained.load(ordering: .acquiring) < loops.count {
            // Watch the new process meanwhile: if it goes, serve on.
            switch receiveControl(control, timeout: 10) {
            case .none:
                takeBack("went away during the handover", kill: false)
                return
            case .some(let message?) where message.type == .failed:
                takeBack("gave up: \(String(decoding: message.payload, as: UTF8.self))", kill: false)
                return
            default: break
            }
        }
        // 3. Nothing in flight: release the store, send the state.
        do {
            try settings.release()
        } catch {
            logger.error("cannot release for the new process: \(error)")
            takeBack("was stopped (nothing could be released to it)", kill: true)
            return
        }
        let state = settings.state()
        let memfd = nt_memfd("needletail-upgrade-state")
        var sent = memfd >= 0
        if sent {
            var done = 0
            while done < state.count {
                let n = state.withUnsafeBytes { write(memfd, $0.baseAddress! + done, state.count - done) }
                if n <= 0 { break }
                done += n
            }
            sent = done == state.count && sendControl(control, .state, fd: memfd)
            close(memfd)
        }
        if !sent { logger.warning("cannot hand the sessions over (\(String(cString: strerror(errno)))); the new process starts without them") }
        sendControl(control, .released)
        // 4. It opens the store and serves, or fails.
        let answer = receiveControl(control, timeout: Int32(settings.takeOverTimeout * 1000))
        guard case .some(let reply?) = answer, reply.type == .serving else {
            if case .some(let reply?) = answer, reply.type == .failed {
                takeBack("gave up: \(String(decoding: reply.payload, as: UTF8.self))", kill: false)
            } else {
                takeBack(answer == nil ? "went away before serving" : "did not serve in time", kill: true)
            }
            return
        }
        succeeded = true
        closeControl = false
        handedOver.store(true, ordering: .releasing)
        logger.notice("pid \(child) serves; this process stops")
        SystemdNotify.send("MAINPID=\(child)")
        server.shutdown(grace: 0)
    }

    /// posix_spawn of `path` with this process's arguments and environment, `sockets` as
    /// descriptors 3… (`LISTEN_FDS`, `LISTEN_FDNAMES`), the control socket after them
    /// (`NEEDLETAIL_UPGRADE_FD`), no other descriptor, default signal handling.
    private func spawnSuccessor(path: String, sockets: [(name: String, fd: Int32)], control: Int32) throws(SocketError) -> pid_t {
        let n = Int32(sockets.count)
        // Copies above the numbers the child gets, so that no dup2 overwrites a source.
        var sources: [Int32] = []
        defer { for fd in sources { close(fd) } }
        for fd in sockets.map(\.fd) + [control] {
            let copy = fcntl(fd, F_DUPFD_CLOEXEC, 3 + n + 1)
            guard copy >= 0 else { throw SocketError("dup of fd \(fd)", errno: errno) }
            sources.append(copy)
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (i, fd) in sources.enumerated() { posix_spawn_file_actions_adddup2(&actions, fd, 3 + Int32(i)) }
        nt_spawn_closefrom(&actions, 3 + n + 1)
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attr, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for s in [SIGTERM, SIGINT, SIGPIPE, SIGHUP, SIGUSR1, SIGUSR2, SIGXFSZ] { sigaddset(&defaults, s) }
        posix_spawnattr_setsigdefault(&attr, &defaults)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var environment: [String] = []
        var e = environ
        while let entry = e.pointee {
            let text = String(cString: entry)
            let name = text.prefix { $0 != "=" }
            if !["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "LISTEN_FDS_FIRST_FD", upgradeVariable].contains(String(name)) {
                environment.append(text)
            }
            e += 1
        }
        environment += [
            "LISTEN_FDS=\(n)", "LISTEN_FDNAMES=\(sockets.map(\.name).joined(separator: ":"))", "\(upgradeVariable)=\(3 + n)",
        ]
        let arguments = [path] + CommandLine.arguments.dropFirst()
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
        defer {
            for p in argv { free(p) }
            for p in envp { free(p) }
        }
        var child: pid_t = 0
        let rc = posix_spawn(&child, path, &actions, &attr, argv, envp)
        guard rc == 0 else { throw SocketError("cannot start \(path)", errno: rc) }
        return child
    }
}

/// The new process's side of an upgrade: the process that started it and hands it its
/// connections, state and store.
///
/// ```swift
/// let predecessor = Predecessor.fromEnvironment()   // says hello: the flags were good
/// // … open the store: it waits for the old process to release it …
/// let state = predecessor?.awaitRelease()            // the old process's sessions
/// try server.runUntilSignalled(succeeding: predecessor)
/// ```
public final class Predecessor: Sendable {
    let control: Int32
    struct State {
        var connections: [(fd: Int32, fastCGI: Bool)] = []
        var state: [UInt8] = []
        var released = false
        var ended = false
        /// Once serving: where later connections go.
        var adopt: (@Sendable (Int32, Bool) -> Void)?
    }
    let state = Mutex(State())

    /// The predecessor that started this process (`NEEDLETAIL_UPGRADE_FD`), told that this
    /// process has started; nil when it was started otherwise. Call it once flags are checked.
    public static func fromEnvironment() -> Predecessor? {
        guard let text = getenv(upgradeVariable).map({ String(cString: $0) }), let fd = Int32(text) else { return nil }
        unsetenv(upgradeVariable)
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        let p = Predecessor(control: fd)
        guard sendControl(fd, .hello, Array("\(getpid())".utf8)) else { return nil }
        do {
            _ = try POSIXThread.spawn(name: "upgrade", detached: true) { p.receive() }
        } catch {
            return nil
        }
        return p
    }

    init(control: Int32) { self.control = control }

    /// Takes the predecessor's messages until it has released everything, then until it goes.
    private func receive() {
        while true {
            guard case .some(let message?) = receiveControl(control, timeout: -1) else {
                state.withLock { $0.ended = true }
                return
            }
            switch message.type {
            case .connection where message.fd >= 0:
                let fastCGI = message.payload.first == 0x66
                let adopt: (@Sendable (Int32, Bool) -> Void)? = state.withLock { s in
                    if s.adopt == nil { s.connections.append((message.fd, fastCGI)) }
                    return s.adopt
                }
                adopt?(message.fd, fastCGI)
            case .state where message.fd >= 0:
                var bytes: [UInt8] = []
                var chunk = [UInt8](repeating: 0, count: 65536)
                var offset: off_t = 0
                while true {
                    let n = chunk.withUnsafeMutableBytes { pread(message.fd, $0.baseAddress, $0.count, offset) }
                    if n <= 0 { break }
                    bytes += chunk[0..<n]
                    offset += off_t(n)
                }
                close(message.fd)
                state.withLock { $0.state = bytes }
            case .released:
                state.withLock { $0.released = true }
            default:
                if message.fd >= 0 { close(message.fd) }
            }
        }
    }

    /// Waits until the predecessor has drained and released its store, and returns the state
    /// it handed over; nil if it went away first (it serves on: so should nobody else).
    public func awaitRelease() -> [UInt8]? {
        while true {
            let (released, ended, bytes) = state.withLock { ($0.released, $0.ended, $0.state) }
            if released { return bytes }
            if ended { return nil }
            usleep(1000)
        }
    }

    /// Tells the predecessor this process cannot take over (it takes everything back).
    public func failed(_ why: String) {
        sendControl(control, .failed, Array(why.utf8))
    }

    /// This process serves: the connections handed over so far, and those still coming, go to
    /// `adopt`; the predecessor is told, and stops.
    func serving(_ adopt: @escaping @Sendable (Int32, Bool) -> Void) {
        let waiting = state.withLock { s in
            s.adopt = adopt
            defer { s.connections.removeAll() }
            return s.connections
        }
        for c in waiting { adopt(c.fd, c.fastCGI) }
        sendControl(control, .serving)
    }
}

/// sd_notify(3) without libsystemd: a datagram to `NOTIFY_SOCKET` when it is set (a unit with
/// `Type=notify`); nothing otherwise.
public enum SystemdNotify {
    /// Sends `text` ("READY=1", "STOPPING=1", "MAINPID=…"); false when not under systemd.
    @discardableResult
    public static func send(_ text: String) -> Bool {
        guard let path = getenv("NOTIFY_SOCKET").map({ String(cString: $0) }), !path.isEmpty else { return false }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(NT_SOCK_CLOEXEC), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
        if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }  // an abstract socket
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count)
        let sent = text.withCString { message in
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, message, strlen(message), 0, $0, length) }
            }
        }
        return sent >= 0
    }
}
