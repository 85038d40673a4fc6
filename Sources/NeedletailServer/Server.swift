import Glibc
import Logging
import NeedletailLoop
import NeedletailWeb

/// Settings of a server.
public struct ServerConfiguration: Sendable {
    /// Number of event loops (threads). Default: the CPUs this process may use.
    public var loops = LoopGroup.availableCPUs
    /// HTTP limits and timeouts.
    public var http = HTTPLimits()
    /// Loop settings (output cap, accept burst).
    public var loop = LoopConfiguration()
    /// listen(2) backlog.
    public var backlog: Int32 = 1024
    /// Seconds that in-flight requests get to finish after SIGTERM/SIGINT.
    public var shutdownGrace = 10
    public init() {}
}

/// A Needletail server: one app behind N event loops, listening natively for HTTP/1.1.
///
/// ```swift
/// let server = try Server(responder: router, configuration: .init(), logger: logger)
/// try server.listen(http: SocketAddress(parsing: "127.0.0.1:8080"))
/// server.runUntilSignalled()
/// ```
public final class Server: Sendable {
    public let configuration: ServerConfiguration
    private let responder: any Responder
    private let logger: Logger
    private let group: LoopGroup
    private let listenersByLoop: [[ListeningSocket]]
    private let shared: [(ListeningSocket, HTTPLimits)]

    /// Binds the listeners and makes the loops; nothing runs until `start()` or `runUntilSignalled()`.
    public init(responder: any Responder, http addresses: [SocketAddress], configuration: ServerConfiguration = ServerConfiguration(),
                logger: Logger = Logger(label: "needletail")) throws(SocketError) {
        self.configuration = configuration
        self.responder = responder
        self.logger = logger
        let log = logger
        group = try LoopGroup(count: configuration.loops, configuration: configuration.loop) { level, message in
            switch level {
            case .debug: log.debug("\(message)")
            case .info: log.info("\(message)")
            case .warning: log.warning("\(message)")
            case .error: log.error("\(message)")
            }
        }
        var perLoop: [[ListeningSocket]] = Array(repeating: [], count: group.loops.count)
        var shared: [(ListeningSocket, HTTPLimits)] = []
        var opened: [ListeningSocket] = []
        do throws(SocketError) {
            for address in addresses {
                var options = ListeningSocket.Options()
                options.backlog = configuration.backlog
                if case .unix = address {
                    let s = try ListeningSocket.bind(address, options: options)
                    opened.append(s)
                    shared.append((s, configuration.http))
                    continue
                }
                // Refuse a port someone else holds, even one that also uses SO_REUSEPORT.
                var probeOptions = options
                probeOptions.bindOnly = true
                let probe = try ListeningSocket.bind(address, options: probeOptions)
                let actual = probe.address
                probe.close(unlinking: false)
                options.reusePort = true
                for i in perLoop.indices {
                    let s = try ListeningSocket.bind(actual, options: options)
                    opened.append(s)
                    perLoop[i].append(s)
                }
            }
        } catch {
            for s in opened { s.close(unlinking: true) }
            throw error
        }
        listenersByLoop = perLoop
        self.shared = shared
    }

    /// The addresses listened on (with real ports when port 0 was asked for).
    public var addresses: [SocketAddress] {
        (listenersByLoop.first ?? []).map(\.address) + shared.map(\.0.address)
    }

    /// Starts the loops on their threads and returns.
    public func start() {
        signal(SIGPIPE, SIG_IGN)
        let listenersByLoop = self.listenersByLoop
        let shared = self.shared
        let responder = self.responder
        let limits = configuration.http
        let logger = self.logger
        let exclusive = group.loops.count > 1
        group.start { loop in
            let context = HTTPLoopContext(responder: responder, limits: limits, logger: logger)
            let factory: HandlerFactory = { connection in
                connection.setTimeout(seconds: limits.headerTimeout)
                return HTTPConnection(context: context)
            }
            for s in listenersByLoop[loop.index] { loop.addListener(s, factory: factory) }
            for (s, _) in shared { loop.addListener(s, exclusive: exclusive, factory: factory) }
        }
    }

    /// Begins a graceful stop (see `ServerConfiguration.shutdownGrace`).
    public func shutdown(grace: Int? = nil) {
        group.shutdown(grace: grace ?? configuration.shutdownGrace)
    }

    /// Waits for the loops to end, then closes the listeners.
    public func wait() {
        group.join()
        closeListeners()
    }

    private func closeListeners() {
        for list in listenersByLoop { for s in list { s.close(unlinking: false) } }
        for (s, _) in shared { s.close(unlinking: true) }
    }

    /// Starts, serves until SIGINT or SIGTERM, stops gracefully, and returns.
    public func runUntilSignalled() {
        LoopGroup.prepareSignals()
        start()
        let logger = self.logger
        let grace = configuration.shutdownGrace
        group.runUntilSignalled(grace: grace) { sig in
            logger.info("received \(sig == SIGTERM ? "SIGTERM" : "SIGINT"); stopping (in-flight requests get \(grace) s)")
        }
        closeListeners()
    }
}
