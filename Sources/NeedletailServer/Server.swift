import NeedletailPOSIX
import Glibc
import Logging
import Synchronization
import NeedletailLoop
import NeedletailHTTP

/// Settings of a server.
public struct ServerConfiguration: Sendable {
    /// Number of event loops (threads). Default: the CPUs this process may use.
    public var loops = LoopGroup.availableCPUs
    /// HTTP limits and timeouts.
    public var http = HTTPLimits()
    /// FastCGI limits (params size, body size, allowed peers).
    public var fastCGI = FastCGILimits()
    /// Loop settings (output cap, accept burst).
    public var loop = LoopConfiguration()
    /// listen(2) backlog.
    public var backlog: Int32 = 1024
    /// File mode of unix sockets the server creates (e.g. 0o660 for the web server's group).
    public var unixSocketMode: mode_t? = nil
    /// Requests whose async handler may be suspended at once on one loop; over it: 503.
    public var maxSuspendedRequestsPerLoop = ServerConfiguration.defaultMaxSuspendedRequests
    /// 10,000: what a loop parks without strain (see docs/PERFORMANCE.md for the memory each takes).
    public static let defaultMaxSuspendedRequests = 10_000
    /// Seconds that in-flight requests get to finish after SIGTERM/SIGINT.
    public var shutdownGrace = 10
    /// Fields every response gets unless it sets them (`X-Content-Type-Options: nosniff`; no
    /// `Server` field unless you add one).
    public var defaultFields = DefaultFields.standard
    /// Gzip for native answers the client accepts (pages, text, JSON…; static assets bring
    /// their own compressed forms). Nil turns it off. Behind a web server it does not apply:
    /// nginx or lighttpd compresses.
    public var compression: CompressionSettings? = CompressionSettings()
    /// The value of `Strict-Transport-Security` on every answer over TLS (RFC 6797), e.g.
    /// `max-age=31536000; includeSubDomains`; nil: not sent. Never sent over plain HTTP.
    public var strictTransportSecurity: String? = nil
    /// With an HTTPS listener: every request to a plain HTTP listener (but the health path) is
    /// answered with a redirect to the same host and target over HTTPS (301 for GET and HEAD,
    /// 308 for other methods, which keeps them).
    public var redirectToHTTPS = false
    /// HTTP/2 without TLS by prior knowledge (h2c, RFC 9113 3.3) on the plain HTTP listeners:
    /// a connection that opens with HTTP/2's preface speaks HTTP/2, any other HTTP/1.1. For
    /// clients that know (a load balancer's HTTP/2 upstream, `curl --http2-prior-knowledge`);
    /// the HTTP/1.1 `Upgrade: h2c` dance is not offered (RFC 9113 dropped it). Off by default.
    public var http2PriorKnowledge = false
    /// The access log (nginx's combined format), off by default. Reopened on SIGUSR1.
    public var accessLog: AccessLogSettings? = nil
    /// Requests that take at least this long are logged as warnings, with where the time went.
    public var slowRequestMilliseconds: Int? = nil
    /// Answers 200 while serving and 503 from SIGTERM on (load balancers' health checks).
    public var healthPath: String? = nil
    /// The status page: counts as text, or JSON with `?json`. Protect it (loopback, nginx `allow`).
    public var statusPath: String? = nil
    /// Prometheus metrics. Protect it as the status page.
    public var metricsPath: String? = nil
    /// Seconds between SIGTERM and closing the listeners, during which everything is served as
    /// usual but the health path answers 503, so that a load balancer stops sending new
    /// requests before the listener goes. 0: close at once.
    public var drainSeconds = 0
    /// A file the process id is written to once serving (`kill -USR2 $(cat FILE)`); a
    /// successor writes its own, and a plain stop removes it.
    public var pidFile: String? = nil
    /// Live upgrades on SIGUSR2: what the process hands over and how (docs/UPGRADE.md).
    public var upgrade = UpgradeSettings()
    /// The app's numbers on the status page and in the metrics (sessions, parked polls…).
    public var gauges: [StatusGauge] = []
    /// What SIGHUP re-reads without a new process (see ``ReloadedSettings``); nil: SIGHUP is
    /// logged and changes nothing.
    public var reload: (@Sendable () throws -> ReloadedSettings)? = nil
    public init() {}
}

/// What a reload (SIGHUP, `Server.reload()`) changes in a running server: only what needs no
/// new process, as nginx's reload would otherwise start new workers. The app's closure reads
/// its settings again, applies what is its own (its log level: a ``LogSink``'s level is shared
/// by every logger writing to it), and returns the rest. A closure that throws keeps every
/// current setting, and its error is logged: a bad edit never takes a server down. Anything
/// else (listeners, loops, the app's code) changes by a live upgrade (SIGUSR2).
public struct ReloadedSettings: Sendable {
    /// The fields every response gets from now on; nil: keep the current ones.
    public var defaultFields: DefaultFields?
    /// What to log about the change ("log level debug, 2 extra fields").
    public var summary: String

    public init(defaultFields: DefaultFields? = nil, summary: String = "") {
        (self.defaultFields, self.summary) = (defaultFields, summary)
    }
}

/// Where the server listens, and which protocol it speaks there.
public enum Listener: Sendable, Equatable {
    /// Native HTTP/1.1 for browsers and load balancers.
    case http(SocketAddress)
    /// Native HTTP/1.1 over TLS 1.2/1.3 (`TLSContext` holds the certificate chain and key;
    /// ALPN offers `http/1.1`). Requests on it have `isSecure` set.
    case https(SocketAddress, TLSContext)
    /// FastCGI responder for nginx, lighttpd or any FastCGI client.
    case fastCGI(SocketAddress)
    /// FastCGI on a listening socket inherited as a file descriptor (fd 0 when spawned by
    /// lighttpd's `bin-path` or spawn-fcgi).
    case fastCGIInherited(fd: Int32)

    /// FastCGI on fd 0 when fd 0 is a listening socket (a process started by lighttpd's
    /// `bin-path` or spawn-fcgi); nil otherwise.
    public static var inheritedFastCGIOnStandardInput: Listener? {
        ListeningSocket.isListeningSocket(0) ? .fastCGIInherited(fd: 0) : nil
    }

    enum Kind: Equatable {
        case http, fastCGI
        case https(TLSContext)

        /// Whether clients speak HTTP to it (with or without TLS).
        var isHTTP: Bool { self != .fastCGI }
        /// The name a successor gets its sockets by (`InheritedSockets`).
        var name: String {
            switch self {
            case .http: "http"
            case .https: "https"
            case .fastCGI: "fastcgi"
            }
        }
    }
    var kind: Kind {
        switch self {
        case .http: .http
        case .https(_, let tls): .https(tls)
        case .fastCGI, .fastCGIInherited: .fastCGI
        }
    }
}

/// A Needletail server: one app behind N event loops, listening for HTTP/1.1 and/or FastCGI.
///
/// ```swift
/// let server = try Server(responder: router, listeners: [.http(try SocketAddress(parsing: "127.0.0.1:8080"))])
/// try server.runUntilSignalled()
/// ```
public final class Server: Sendable {
    public let configuration: ServerConfiguration
    private let responder: any Responder
    private let logger: Logger
    private let group: LoopGroup
    /// Per loop: its own SO_REUSEPORT sockets.
    private let listenersByLoop: [[(ListeningSocket, Listener.Kind)]]
    /// Shared by all loops (unix sockets, inherited sockets), with whether to unlink at stop.
    private let shared: [(ListeningSocket, Listener.Kind, Bool)]
    private let state = ServerState()
    private let accessLogFile: AccessLogFile?
    private let upgrader = Upgrader()
    private let nextAdopter = Atomic<Int>(0)
    /// The HTTPS listeners' certificates, re-read by `reload()`.
    private let tlsContexts: [TLSContext]
    /// Where plain HTTP requests are redirected (the first HTTPS listener's port), when asked.
    private let redirectPort: UInt16?

    /// Binds the listeners and makes the loops; nothing runs until `start()` or `runUntilSignalled()`.
    public init(
        responder: any Responder, listeners: [Listener], configuration: ServerConfiguration = ServerConfiguration(),
        logger: Logger = Logger(label: "needletail")
    ) throws(SocketError) {
        self.configuration = configuration
        let operated = configuration.healthPath != nil || configuration.statusPath != nil || configuration.metricsPath != nil
        self.responder = operated ? OperationsResponder(app: responder, state: state, configuration: configuration) : responder
        self.logger = logger
        if let settings = configuration.accessLog {
            do {
                accessLogFile = try AccessLogFile(path: settings.path)
            } catch {
                throw SocketError("cannot open the access log \(settings.path): \(error)")
            }
        } else {
            accessLogFile = nil
        }
        let log = logger
        group = try LoopGroup(count: configuration.loops, configuration: configuration.loop) { level, message in
            switch level {
            case .debug: log.debug("\(message)")
            case .info: log.info("\(message)")
            case .warning: log.warning("\(message)")
            case .error: log.error("\(message)")
            }
        }
        var perLoop: [[(ListeningSocket, Listener.Kind)]] = Array(repeating: [], count: group.loops.count)
        var shared: [(ListeningSocket, Listener.Kind, Bool)] = []
        var opened: [(ListeningSocket, Bool)] = []
        var bound: [SocketAddress] = []
        var inherited = InheritedSockets.take()
        for problem in InheritedSockets.problems.withLock({ p in defer { p.removeAll() }; return p }) { logger.warning("\(problem)") }
        /// Inherited sockets of one address: one is shared by the loops; several (a
        /// predecessor's per-loop sockets) are dealt out to them.
        func place(_ sockets: [InheritedSocket], _ kind: Listener.Kind) {
            if sockets.count == 1 {
                shared.append((sockets[0].socket, kind, sockets[0].name.hasSuffix(Self.ownedSuffix)))
            } else {
                for (j, s) in sockets.enumerated() { perLoop[j % perLoop.count].append((s.socket, kind)) }
            }
            for s in sockets { opened.append((s.socket, false)) }
        }
        do throws(SocketError) {
            for listener in listeners {
                var options = ListeningSocket.Options()
                options.backlog = configuration.backlog
                options.unixMode = configuration.unixSocketMode
                let address: SocketAddress
                switch listener {
                case .http(let a), .fastCGI(let a), .https(let a, _): address = a
                case .fastCGIInherited(let fd):
                    let s = try ListeningSocket.adopt(fd: fd)
                    shared.append((s, .fastCGI, false))
                    opened.append((s, false))
                    bound.append(s.address)
                    continue
                }
                // Sockets this process was started with (systemd, or a predecessor handing over).
                let matching = inherited.filter { $0.protocolName == listener.kind.name && $0.socket.address.serves(address) }
                if !matching.isEmpty {
                    inherited.removeAll { s in matching.contains { $0.socket.fd == s.socket.fd } }
                    place(matching, listener.kind)
                    bound.append(matching[0].socket.address)
                    continue
                }
                if case .unix = address {
                    let s = try ListeningSocket.bind(address, options: options)
                    opened.append((s, true))
                    shared.append((s, listener.kind, true))
                    bound.append(s.address)
                    continue
                }
                // Refuse a port someone else holds, even one that also uses SO_REUSEPORT.
                var probeOptions = options
                probeOptions.bindOnly = true
                let probe = try ListeningSocket.bind(address, options: probeOptions)
                let actual = probe.address
                probe.close(unlinking: false)
                options.reusePort = true
                // HTTP clients speak first: have the kernel wait for the request before accept.
                // (FastCGI web servers do too, but their connections are few and long-lived.)
                if listener.kind.isHTTP { options.deferAcceptSeconds = 10 }
                for i in perLoop.indices {
                    let s = try ListeningSocket.bind(actual, options: options)
                    opened.append((s, false))
                    perLoop[i].append((s, listener.kind))
                }
                bound.append(actual)
            }
            // Inherited sockets no listener named: served by their names' protocol (systemd
            // socket units say what they are; the command line need not repeat them).
            var byAddress: [(SocketAddress, Listener.Kind, [InheritedSocket])] = []
            for s in inherited {
                guard let kind = s.kind else {
                    logger.warning(
                        s.protocolName == "https"
                            ? "inherited socket \(s.socket.address) is named https, but no --https listener gives its certificate; closed"
                            : "inherited socket \(s.socket.address) is named \(s.name), not http or fastcgi; closed")
                    s.socket.close(unlinking: false)
                    continue
                }
                if let i = byAddress.firstIndex(where: { $0.0 == s.socket.address && $0.1 == kind }) {
                    byAddress[i].2.append(s)
                } else {
                    byAddress.append((s.socket.address, kind, [s]))
                }
            }
            for (address, kind, sockets) in byAddress {
                place(sockets, kind)
                bound.append(address)
            }
        } catch {
            for (s, unlink) in opened { s.close(unlinking: unlink) }
            throw error
        }
        listenersByLoop = perLoop
        self.shared = shared
        var contexts: [TLSContext] = []
        for case .https(_, let tls) in listeners where !contexts.contains(where: { $0 === tls }) { contexts.append(tls) }
        tlsContexts = contexts
        var port: UInt16? = nil
        if configuration.redirectToHTTPS {
            for (listener, address) in zip(listeners, bound) {
                if case .https = listener {
                    switch address {
                    case .ipv4(_, let p), .ipv6(_, let p): port = p
                    case .unix: continue
                    }
                    break
                }
            }
            if port == nil { logger.warning("redirectToHTTPS is set, but no HTTPS listener on an IP address: plain HTTP is served") }
        }
        redirectPort = port
        self.bound = bound
    }

    /// The suffix of a socket's name that says the process bound it itself (a unix socket it
    /// removes when it stops), so that the successor it is handed to removes it in its place.
    static let ownedSuffix = ".owned"

    /// Binds native HTTP listeners (a shorthand for `listeners: addresses.map(Listener.http)`).
    public convenience init(
        responder: any Responder, http addresses: [SocketAddress], configuration: ServerConfiguration = ServerConfiguration(),
        logger: Logger = Logger(label: "needletail")
    ) throws(SocketError) {
        try self.init(responder: responder, listeners: addresses.map { .http($0) }, configuration: configuration, logger: logger)
    }

    /// The addresses listened on (with real ports when port 0 was asked for), in the order given,
    /// then those of inherited sockets no listener named.
    public var addresses: [SocketAddress] { bound }
    private let bound: [SocketAddress]

    /// Every listening socket with the name a successor gets it by (`InheritedSockets`): the
    /// protocol, and `ownedSuffix` for a unix socket this process would remove at its stop.
    /// Not an inherited fd 0, which a successor inherits as fd 0.
    var namedSockets: [(name: String, fd: Int32)] {
        func name(_ kind: Listener.Kind) -> String { kind.name }
        var list: [(String, Int32)] = []
        for loop in listenersByLoop { for (s, kind) in loop { list.append((name(kind), s.fd)) } }
        for (s, kind, unlink) in shared where s.fd != 0 { list.append((name(kind) + (unlink ? Self.ownedSuffix : ""), s.fd)) }
        return list
    }

    /// Starts the loops on their threads and returns. A loop thread that cannot be started
    /// stops the others and is the error.
    public func start() throws(SystemCallError) {
        signal(SIGPIPE, SIG_IGN)
        signal(SIGXFSZ, SIG_IGN)
        let listenersByLoop = self.listenersByLoop
        let shared = self.shared.map { ($0.0, $0.1) }
        let responder = self.responder
        let configuration = self.configuration
        let logger = self.logger
        let exclusive = group.loops.count > 1
        let state = self.state
        let accessLogFile = self.accessLogFile
        let redirectPort = self.redirectPort
        do {
            try group.start { loop in
                Self.setUp(
                    loop, listenersByLoop: listenersByLoop, shared: shared, exclusive: exclusive,
                    responder: responder, configuration: configuration, state: state, accessLogFile: accessLogFile,
                    redirectPort: redirectPort, logger: logger)
            }
        } catch {
            group.shutdown(grace: 0)
            group.join()
            throw error
        }
    }

    /// What each loop does on its own thread before it runs: its context and listeners.
    private static func setUp(
        _ loop: EventLoop, listenersByLoop: [[(ListeningSocket, Listener.Kind)]], shared: [(ListeningSocket, Listener.Kind)],
        exclusive: Bool, responder: any Responder, configuration: ServerConfiguration, state: ServerState,
        accessLogFile: AccessLogFile?, redirectPort: UInt16?, logger: Logger
    ) {
        var accessLog: AccessLogBuffer? = nil
        if let file = accessLogFile, let settings = configuration.accessLog {
            accessLog = AccessLogBuffer(file: file, settings: settings, loopIndex: loop.index)
        }
        let counting = configuration.statusPath != nil || configuration.metricsPath != nil
        let context = LoopContext(
            responder: responder,
            https: HTTPSFacts(
                strictTransportSecurity: configuration.strictTransportSecurity, redirectPort: redirectPort,
                exempt: configuration.healthPath),
            limits: configuration.http, fastCGI: configuration.fastCGI,
            defaults: configuration.defaultFields, maxSuspended: configuration.maxSuspendedRequestsPerLoop,
            compression: configuration.compression, accessLog: accessLog, stats: counting ? LoopStats() : nil,
            slowMilliseconds: configuration.slowRequestMilliseconds, logger: logger)
        state.register(loop, context)
        if let accessLog {
            // At least once a second, whatever the traffic; the rest is flushed when the loops end.
            func tick() {
                accessLog.flush()
                _ = loop.schedule(after: 1000, tick)
            }
            _ = loop.schedule(after: 1000, tick)
        }
        func factory(_ kind: Listener.Kind) -> HandlerFactory {
            switch kind {
            case .http, .https:
                // HTTP/2 where it is offered (ALPN on TLS, h2c by prior knowledge on plain): the
                // first bytes choose the codec. A TLS client that opens and sends nothing is cut by
                // the same header timeout.
                let selects = kind.tls?.http2 ?? configuration.http2PriorKnowledge
                return { connection in
                    connection.setTimeout(seconds: configuration.http.headerTimeout)
                    return selects ? ProtocolSelector(context: context) : HTTPConnection(context: context)
                }
            case .fastCGI:
                return { connection in
                    let allowed = configuration.fastCGI.allowedPeers
                    if !allowed.isEmpty, !allowed.contains(connection.remoteAddress) {
                        logger.warning(
                            "FastCGI connection refused: peer not in FCGI_WEB_SERVER_ADDRS",
                            metadata: ["peer": "\(connection.remoteAddress)"])
                        connection.closeAfterFlush()
                    }
                    connection.setTimeout(seconds: configuration.fastCGI.idleTimeout)
                    return FastCGIConnection(context: context)
                }
            }
        }
        do throws(SystemCallError) {
            for (s, kind) in listenersByLoop[loop.index] {
                try loop.addListener(s, readAtAccept: kind.isHTTP, tls: kind.tls, factory: factory(kind))
            }
            for (s, kind) in shared { try loop.addListener(s, exclusive: exclusive, tls: kind.tls, factory: factory(kind)) }
        } catch {
            logger.critical("loop \(loop.index) cannot watch its listeners, it accepts nothing: \(error)")
        }
    }

    /// Begins a graceful stop (see `ServerConfiguration.shutdownGrace`).
    public func shutdown(grace: Int? = nil) {
        group.shutdown(grace: grace ?? configuration.shutdownGrace)
    }

    /// Waits for the loops to end, then closes the listeners (and writes the access log's last lines).
    public func wait() {
        group.join()
        closeListeners()
        finishAccessLog()
    }

    /// After the loops have ended (their buffers are no longer touched by them).
    private func finishAccessLog() {
        guard let file = accessLogFile else { return }
        for (_, context) in state.loops { context.accessLog?.flush() }
        file.finish()
    }

    /// Reopens the access log at its path (what SIGUSR1 does; for logrotate).
    public func reopenLogs() {
        accessLogFile?.reopen()
    }

    /// Re-reads what can change without a new process (what SIGHUP does; see
    /// ``ReloadedSettings``): the HTTPS listeners' certificates and keys (new connections get
    /// the new ones; a file that cannot be used keeps the old ones and is logged), then
    /// `configuration.reload` on the calling thread, whose new fields every loop uses from its
    /// next answer on. Returns whether anything changed; the log says how.
    @discardableResult
    public func reload() -> Bool {
        var changed = false
        for tls in tlsContexts {
            do {
                try tls.reload()
                logger.notice("reloaded \(tls)")
                changed = true
            } catch {
                logger.error("certificate reload failed, the certificates in use stay: \(error)")
            }
        }
        guard let read = configuration.reload else {
            if tlsContexts.isEmpty {
                logger.notice("reload asked for (SIGHUP), but this server has nothing to re-read; for anything else, upgrade (SIGUSR2)")
            }
            return changed
        }
        let settings: ReloadedSettings
        do {
            settings = try read()
        } catch {
            logger.error("reload failed, the current settings stay: \(error)")
            return changed
        }
        if let fields = settings.defaultFields {
            for (loop, context) in state.loops {
                let box = LoopBox(loop: loop, context: context)
                loop.execute { box.context.defaults = fields }
            }
        }
        logger.notice("reloaded\(settings.summary.isEmpty ? "" : ": " + settings.summary)")
        return true
    }

    /// Makes the health path answer 503 (what SIGTERM does first when `drainSeconds` > 0).
    public func beginDraining() {
        state.draining.store(true, ordering: .relaxed)
    }

    private func closeListeners() {
        // After a handover the successor listens on them: a unix socket's path stays.
        let keep = upgrader.handedOver.load(ordering: .acquiring)
        for list in listenersByLoop { for (s, _) in list { s.close(unlinking: false) } }
        for (s, _, unlink) in shared { s.close(unlinking: unlink && !keep) }
    }

    /// Writes this process's id to `path` (a temporary file renamed over it: readers never see
    /// half of it).
    private func writePIDFile(_ path: String) {
        let tmp = path + ".\(getpid()).tmp"
        let text = "\(getpid())\n"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0, text.withCString({ Glibc.write(fd, $0, strlen($0)) }) == text.utf8.count, Glibc.close(fd) == 0,
            rename(tmp, path) == 0
        else {
            logger.error("cannot write the pid file \(path): \(String(cString: strerror(errno)))")
            unlink(tmp)
            return
        }
    }

    /// Removes the pid file if it still names this process (a successor has written its own).
    private func removePIDFile(_ path: String) {
        var buffer = [UInt8](repeating: 0, count: 32)
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        Glibc.close(fd)
        if n > 0, String(decoding: buffer[0..<n], as: UTF8.self) == "\(getpid())\n" { unlink(path) }
    }

    /// The loops (for the upgrade's handover).
    var loops: [EventLoop] { group.loops }

    /// The protocol of each listener of loop `index`, in the order the loop has them.
    func listenerKinds(on index: Int) -> [Listener.Kind] {
        listenersByLoop[index].map(\.1) + shared.map(\.1)
    }

    /// Serves a connection a predecessor handed over, on the next loop in turn.
    func adopt(fd: Int32, fastCGI: Bool) {
        let loops = group.loops
        let i = nextAdopter.add(1, ordering: .relaxed).oldValue % loops.count
        guard let listener = listenerKinds(on: i).firstIndex(of: fastCGI ? .fastCGI : .http) else {
            logger.warning("a \(fastCGI ? "FastCGI" : "HTTP") connection was handed over, but this process does not listen for it; closed")
            Glibc.close(fd)
            return
        }
        loops[i].adopt(fd: fd, listener: listener)
    }

    /// Starts a live upgrade, as SIGUSR2 does: the executable at this one's path takes over
    /// (see `UpgradeSettings`). Returns at once; the log says how it went.
    public func upgrade() {
        upgrader.begin(server: self, logger: logger)
    }

    /// Starts, serves until SIGINT or SIGTERM, stops gracefully, and returns. SIGUSR1 reopens
    /// the access log; SIGUSR2 starts a live upgrade (`upgrade()`); SIGHUP re-reads what can
    /// change without a new process (`reload()`). With a `predecessor` (this
    /// process was started by an upgrade), it takes over the connections handed over and
    /// tells the predecessor, which then stops. Under systemd (`NOTIFY_SOCKET`) it says
    /// READY=1 once serving and STOPPING=1 at the stop.
    public func runUntilSignalled(succeeding predecessor: Predecessor? = nil) throws(SystemCallError) {
        LoopGroup.prepareSignals()
        try start()
        if let path = configuration.pidFile { writePIDFile(path) }
        predecessor?.serving { [self] fd, fastCGI in adopt(fd: fd, fastCGI: fastCGI) }
        SystemdNotify.send("READY=1\nMAINPID=\(getpid())")
        defer {
            SystemdNotify.send("STOPPING=1")
            if let path = configuration.pidFile { removePIDFile(path) }
        }
        let logger = self.logger
        let grace = configuration.shutdownGrace
        let drain = configuration.drainSeconds
        group.runUntilSignalled(
            grace: grace, drainSeconds: drain,
            beginDraining: { [self] sig in
                beginDraining()
                logger.info("received \(sig == SIGTERM ? "SIGTERM" : "SIGINT"); draining for \(drain) s (the health path answers 503), then stopping")
            },
            handlers: [
                SIGUSR1: { [self] in
                    logger.info("received SIGUSR1; reopening the access log")
                    reopenLogs()
                },
                SIGUSR2: { [self] in upgrade() },
                SIGHUP: { [self] in reload() },
            ]
        ) { sig in
            beginDraining()
            logger.info("received \(sig == SIGTERM ? "SIGTERM" : "SIGINT"); stopping (in-flight requests get \(grace) s)")
        }
        closeListeners()
        finishAccessLog()
    }
}

extension Listener.Kind {
    /// The TLS settings of an HTTPS listener.
    var tls: TLSContext? {
        if case .https(let t) = self { return t }
        return nil
    }
}

extension InheritedSocket {
    /// The protocol its name gives ("http", "https", "fastcgi", with or without `Server.ownedSuffix`).
    var protocolName: String {
        name.hasSuffix(Server.ownedSuffix) ? String(name.dropLast(Server.ownedSuffix.count)) : name
    }

    /// The protocol its name gives, for a socket no listener named ("https" needs a
    /// certificate, which only a listener gives: nil).
    var kind: Listener.Kind? {
        switch protocolName {
        case "http": return .http
        case "fastcgi": return .fastCGI
        default: return nil
        }
    }
}

extension SocketAddress {
    /// Whether a socket bound to `self` is what a listener asking for `wanted` would bind (port
    /// 0 asks for any port).
    func serves(_ wanted: SocketAddress) -> Bool {
        switch (self, wanted) {
        case (.ipv4(let h, let p), .ipv4(let wh, let wp)), (.ipv6(let h, let p), .ipv6(let wh, let wp)):
            return h == wh && (wp == 0 || p == wp)
        case (.unix(let a), .unix(let b)): return a == b
        default: return false
        }
    }
}
