import ArgumentParser
import Glibc
import Logging
import Needletail
import NeedletailCluster
import NeedletailFCGICompat
import NeedletailPostgres

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "needletail-demo",
        abstract: "The Needletail demo application.",
        subcommands: [Serve.self],
        defaultSubcommand: Serve.self)
}

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the demo app: natively over HTTP/1.1, as a FastCGI responder, or as a CGI program.",
        discussion: """
            With no --http or --fastcgi: FastCGI on fd 0 when it is a listening socket (lighttpd \
            bin-path, spawn-fcgi); one CGI request when GATEWAY_INTERFACE is set (mod_cgi, fcgiwrap); \
            else HTTP on 127.0.0.1:8080.
            """)

    @ArgumentParser.Option(name: .long, help: "Listen for HTTP on HOST:PORT, [IPv6]:PORT or unix:/path (repeatable).")
    var http: [String] = []

    @ArgumentParser.Option(name: .long, help: "Listen for HTTPS (TLS 1.2/1.3) on HOST:PORT or [IPv6]:PORT (repeatable); needs --cert and --key.")
    var https: [String] = []

    @ArgumentParser.Option(
        name: .long,
        help: "PEM file with a certificate and its chain (leaf first), for --https; repeatable, each with its --key: the first is the default, the others are chosen by SNI. Re-read on SIGHUP.")
    var cert: [String] = []

    @ArgumentParser.Option(name: .long, help: "PEM file with the private key of the --cert given in the same place.")
    var key: [String] = []

    @ArgumentParser.Option(
        name: .long,
        help: "DER OCSP response to staple for the --cert given in the same place (openssl ocsp -respout; `none` for a certificate without one). Checked when read; re-read on SIGHUP.")
    var ocspResponse: [String] = []

    @ArgumentParser.Option(
        name: .long,
        help: "File of 80 random bytes (openssl rand 80) for session-ticket keys shared by several servers, as nginx's ssl_session_ticket_key (repeatable: new tickets get the first, the others are still accepted). Without it keys are made here and rotate every 12 h. Re-read on SIGHUP.")
    var ticketKey: [String] = []

    @ArgumentParser.Flag(name: .long, help: "Offer HTTP/2 (ALPN h2) on the --https listeners, before HTTP/1.1.")
    var http2 = false

    @ArgumentParser.Flag(name: .long, help: "Speak HTTP/2 by prior knowledge (h2c) on the plain HTTP listeners to clients that open with its preface.")
    var h2c = false

    @ArgumentParser.Option(name: .long, help: "Send Strict-Transport-Security: max-age=SECONDS on every HTTPS answer (RFC 6797).")
    var hstsMaxAge: Int?

    @ArgumentParser.Flag(name: .long, help: "Answer plain HTTP requests (but the health path) with a redirect to the --https listener.")
    var redirectToHttps = false

    @ArgumentParser.Option(name: .long, help: "Listen for FastCGI on HOST:PORT or unix:/path (repeatable).")
    var fastcgi: [String] = []

    @ArgumentParser.Option(name: .long, help: "FastCGI implementation: native (on the event loops) or libfcgi (blocking threads).")
    var fastcgiImpl: String = "native"

    @ArgumentParser.Option(name: .long, help: "File mode of unix sockets, octal (e.g. 660).")
    var socketMode: String?

    @ArgumentParser.Option(name: .long, help: "Number of event loops (threads). Default: one per CPU.")
    var loops: Int?

    @ArgumentParser.Option(name: .long, help: "Largest request body in bytes (over it: 413).")
    var maxBody: Int = 1 << 20

    @ArgumentParser.Option(
        name: .long,
        help:
            "Folder for the message board's records (created if missing). Default: $STATE_DIRECTORY (systemd's StateDirectory=) when set, else ./needletail-data."
    )
    var data: String?

    @ArgumentParser.Option(
        name: .long,
        help:
            "Where the board's records, the sessions and the channel versions live: a PostgreSQL URL (postgres://user@host/db; PG* variables fill in the rest) for several backends sharing them. Default: the log in --data, in this process."
    )
    var store: String?

    @ArgumentParser.Option(name: .long, help: "Folder whose files are served under /static/ (sendfile, ETag, ranges).")
    var `public`: String?

    @ArgumentParser.Option(
        name: .long,
        help:
            "A field every response gets, as \"Name: value\" (repeatable; e.g. \"Server: needletail\"). X-Content-Type-Options: nosniff is always added."
    )
    var header: [String] = []

    @Flag(name: .long, help: "The board's posts block their loop until durable (the synchronous store API), for Benchmarks/async-bench.")
    var syncBoardWrites = false

    @Flag(name: .long, help: "Send answers uncompressed whatever Accept-Encoding says (gzip is on by default natively).")
    var noGzip = false

    @ArgumentParser.Option(name: .long, help: "Write an access log in nginx's combined format to PATH, or - for standard output. Reopened on SIGUSR1.")
    var accessLog: String?

    @Flag(name: .long, help: "Append the request time in microseconds and the loop to each access-log line.")
    var accessLogTimed = false

    @ArgumentParser.Option(name: .long, help: "Log a warning for requests taking at least N ms, with where the time went.")
    var slowRequestMs: Int?

    @ArgumentParser.Option(name: .long, help: "Answer 200 here while serving, 503 once stopping (for load balancers), e.g. /healthz.")
    var healthPath: String?

    @ArgumentParser.Option(name: .long, help: "Serve the status page here (text; JSON with ?json), e.g. /status. Protect it.")
    var statusPath: String?

    @ArgumentParser.Option(name: .long, help: "Serve Prometheus metrics here, e.g. /metrics. Protect it.")
    var metricsPath: String?

    @ArgumentParser.Option(name: .long, help: "Seconds between SIGTERM and closing the listeners, while the health path answers 503.")
    var drainSeconds: Int = 0

    @ArgumentParser.Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    @ArgumentParser.Option(
        name: .long,
        help:
            "Where the log goes: a file (appended to), stderr, syslog, or syslog:/path/to/socket. Default: stderr, or syslog when stderr is /dev/null (a daemon's child)."
    )
    var logFile: String?

    @ArgumentParser.Option(
        name: .long, help: "Development mode (scripts/dev): show the build errors this file holds at the top of every live page.")
    var developmentStatus: String?

    @ArgumentParser.Option(
        name: .long,
        help: "A file of log-level and header lines, read at start and again on SIGHUP (it overrides --log-level and --header).")
    var settings: String?

    @ArgumentParser.Option(name: .long, help: "Write the process id to this file once serving (kill -USR2 $(cat FILE) upgrades to a new build).")
    var pidFile: String?

    func validate() throws {
        if let l = loops, l < 1 || l > 1024 { throw ValidationError("--loops must be between 1 and 1024") }
        if maxBody < 0 { throw ValidationError("--max-body must not be negative") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level \(logLevel)") }
        guard ["native", "libfcgi"].contains(fastcgiImpl) else { throw ValidationError("--fastcgi-impl is native or libfcgi") }
        if let s = store, !(s.hasPrefix("postgres://") || s.hasPrefix("postgresql://")) {
            throw ValidationError("--store must be a PostgreSQL URL (postgres://user@host/db); without it the board uses the log in --data")
        }
        if store != nil && syncBoardWrites { throw ValidationError("--sync-board-writes is for the log store only") }
        for (name, path) in [("--health-path", healthPath), ("--status-path", statusPath), ("--metrics-path", metricsPath)] {
            if let p = path, !p.hasPrefix("/") { throw ValidationError("\(name) must be a path starting with /") }
        }
        if let ms = slowRequestMs, ms < 0 { throw ValidationError("--slow-request-ms must not be negative") }
        if drainSeconds < 0 || drainSeconds > 3600 { throw ValidationError("--drain-seconds must be between 0 and 3600") }
        if let m = socketMode, mode_t(m, radix: 8) == nil { throw ValidationError("--socket-mode must be octal, e.g. 660") }
        for h in header where h.firstIndex(of: ":") == nil || DefaultFields([Self.field(h)]).fields.isEmpty {
            throw ValidationError("--header must be \"Name: value\" (a token, a colon, a value without CR or LF): \(h)")
        }
    }

    /// "Name: value" → (Name, value).
    static func field(_ text: String) -> (name: String, value: String) {
        guard let colon = text.firstIndex(of: ":") else { return ("", "") }
        return (String(text[..<colon]), text[text.index(after: colon)...].trimmingCharacters())
    }

    /// The fields every response gets: the standard ones and the file's headers, or the flags'.
    static func defaultFields(_ file: DemoSettings, flags: [(name: String, value: String)]) -> DefaultFields {
        DefaultFields(DefaultFields.standard.fields + (file.headers.map { $0.map { ($0.name, $0.value) } } ?? flags))
    }

    /// The board's folder: --data, systemd's StateDirectory=, or ./needletail-data, made absolute
    /// so that the log names the folder that was really used.
    var dataDirectory: String {
        let chosen =
            data ?? getenv("STATE_DIRECTORY").map { String(cString: $0) }.flatMap { $0.split(separator: ":").first.map(String.init) }
            ?? "needletail-data"
        if chosen.hasPrefix("/") { return chosen }
        guard let pointer = getcwd(nil, 0) else { return chosen }
        defer { free(pointer) }
        let cwd = String(cString: pointer)
        return (cwd.hasSuffix("/") ? cwd : cwd + "/") + chosen
    }

    func run() throws {
        let destination = logFile.map(LogDestination.init(parsing:)) ?? .automatic
        let sink: LogSink
        do {
            sink = try destination.open(tag: "needletail-demo")
        } catch  where logFile == nil {
            sink = try LogDestination.standardError.open(tag: "needletail-demo")  // no syslog here: serve all the same
        } catch {
            let line = "needletail-demo: \(error.description)\n"
            _ = line.withCString { write(2, $0, strlen($0)) }
            throw ExitCode(1)
        }
        LoggingSystem.bootstrap { LogSinkHandler(label: $0, sink: sink) }
        var logger = Logger(label: "needletail")
        let fromFlags = (level: Logger.Level(rawValue: logLevel) ?? .info, fields: header.map(Self.field))
        var fromFile = DemoSettings()
        if let path = settings {
            do { fromFile = try DemoSettings.read(path) } catch {
                logger.critical("\(error)")
                throw ExitCode(1)
            }
        }
        logger.logLevel = fromFile.logLevel ?? fromFlags.level
        let errorLogger = logger
        let cgi = http.isEmpty && https.isEmpty && fastcgi.isEmpty && CGIResponder.isCGIRequest
        // A server opens the board's records now, so that a folder it cannot use is in the log
        // at start; a CGI run opens them only for a request that shows the board.
        let onError: @Sendable (String) -> Void = { errorLogger.error("\($0)") }
        // Started by a running server handing over to this build (SIGUSR2, docs/UPGRADE.md):
        // tell it the flags are good; the store below waits for it to drain and let go.
        let predecessor = cgi ? nil : Predecessor.fromEnvironment()
        if predecessor != nil { logger.notice("started by pid \(getppid()) to take over from it") }
        let storeHandle = Board.LogStoreHandle(lockTimeout: predecessor == nil ? 5 : 120)
        var board = Board.Source.log(folder: dataDirectory, handle: storeHandle)
        var core = LiveAppCore(development: developmentStatus.map { DevelopmentBuild(statusFile: $0) }, onError: onError)
        if let url = store, !cgi {
            do {
                (board, core) = try Self.openShared(url, onError: onError)
            } catch {
                logger.critical("cannot use the store \(PostgresConfiguration(url).redacted): \(error)")
                throw ExitCode(1)
            }
            logger.info("board, sessions and channels in \(PostgresConfiguration(url).redacted)")
        }
        let app = DemoApp.app(
            board: board, core: core, publicDirectory: `public`, openNow: !cgi, cgi: cgi, syncBoardWrites: syncBoardWrites, onError: onError)

        if cgi {
            throw ExitCode(CGIResponder.serveOne(responder: app, maxBodyBytes: maxBody))
        }
        if let predecessor {
            if store == nil && storeHandle.store.withLock({ $0 }) == nil {
                predecessor.failed("the new process cannot open the board's records in \(dataDirectory)")
                logger.critical("cannot take over: the board's records in \(dataDirectory) cannot be opened (see above)")
                throw ExitCode(1)
            }
            guard let state = predecessor.awaitRelease() else {
                logger.critical("cannot take over: the old process went away before handing over (it serves on, or stopped)")
                throw ExitCode(1)
            }
            logger.info("took over \(app.core.sessions.restore(state)) sessions")
        }

        var listeners: [Listener] = []
        do {
            listeners += try http.map { .http(try SocketAddress(parsing: $0)) }
            listeners += try fastcgi.map { .fastCGI(try SocketAddress(parsing: $0)) }
        } catch let error as SocketError {
            throw ValidationError(error.description)
        }
        if !https.isEmpty {
            guard !cert.isEmpty, cert.count == key.count else {
                throw ValidationError("--https needs --cert FILE and --key FILE (PEM), one --key for each --cert")
            }
            guard ocspResponse.isEmpty || ocspResponse.count == cert.count else {
                throw ValidationError("--ocsp-response is given for each --cert, in the same order (`none` for one without)")
            }
            let ocsp: [String?] = ocspResponse.isEmpty ? cert.map { _ in nil } : ocspResponse.map { $0 == "none" ? nil : $0 }
            // A certificate, key or OCSP response that cannot be used refuses the start, naming the file.
            let tls: TLSContext
            do {
                let certificates = zip(zip(cert, key), ocsp).map {
                    TLSCertificate(certificateFile: $0.0, keyFile: $0.1, ocspResponseFile: $1)
                }
                tls = try TLSContext(certificates: certificates, ticketKeyFiles: ticketKey, http2: http2)
            } catch {
                predecessor?.failed("\(error)")
                logger.critical("cannot serve HTTPS: \(error)")
                throw ExitCode(1)
            }
            do {
                listeners += try https.map { .https(try SocketAddress(parsing: $0), tls) }
            } catch let error as SocketError {
                throw ValidationError(error.description)
            }
        } else if !cert.isEmpty || !key.isEmpty || !ocspResponse.isEmpty || !ticketKey.isEmpty {
            throw ValidationError("--cert, --key, --ocsp-response and --ticket-key are for --https, which is not given")
        }
        // Sockets from systemd (or a predecessor) are served by their names without flags.
        if listeners.isEmpty && getenv("LISTEN_FDS") == nil {
            listeners = [Listener.inheritedFastCGIOnStandardInput ?? .http(.ipv4(host: "127.0.0.1", port: 8080))]
        }

        var config = ServerConfiguration()
        if let l = loops { config.loops = l }
        config.http.maxBodyBytes = maxBody
        config.fastCGI.maxBodyBytes = maxBody
        config.unixSocketMode = socketMode.flatMap { mode_t($0, radix: 8) }
        config.defaultFields = Self.defaultFields(fromFile, flags: fromFlags.fields)
        if let path = settings {
            config.reload = {
                let read = try DemoSettings.read(path)
                let level = read.logLevel ?? fromFlags.level
                sink.level = level
                let fields = Self.defaultFields(read, flags: fromFlags.fields)
                return ReloadedSettings(
                    defaultFields: fields,
                    summary: "\(path): log level \(level), fields \(fields.fields.map { "\($0.name): \($0.value)" }.joined(separator: ", "))")
            }
        }
        if noGzip { config.compression = nil }
        if (hstsMaxAge != nil || redirectToHttps) && https.isEmpty {
            throw ValidationError("--hsts-max-age and --redirect-to-https are for --https, which is not given")
        }
        if let age = hstsMaxAge {
            guard age >= 0 else { throw ValidationError("--hsts-max-age is a number of seconds, 0 or more") }
            config.strictTransportSecurity = "max-age=\(age)"
        }
        config.redirectToHTTPS = redirectToHttps
        config.http2PriorKnowledge = h2c
        config.accessLog = accessLog.map { AccessLogSettings(path: $0, timed: accessLogTimed) }
        config.slowRequestMilliseconds = slowRequestMs
        config.healthPath = healthPath
        config.statusPath = statusPath
        config.metricsPath = metricsPath
        config.drainSeconds = drainSeconds
        config.pidFile = pidFile
        let liveCore = app.core
        config.gauges = [
            StatusGauge("needletail_sessions", help: "Sessions held in memory.") { Double(liveCore.sessions.count) },
            StatusGauge("needletail_parked_subscribers", help: "Parked long-polls and open event streams.") { Double(liveCore.channels.waiting) },
        ]
        // What a live upgrade hands over: parked polls and streams end (their pages come back
        // to the new process), the store's log (once drained), the sessions.
        config.upgrade.drain = { liveCore.endSubscriptions() }
        config.upgrade.release = { try storeHandle.store.withLock { $0 }?.suspend() }
        config.upgrade.state = { liveCore.sessions.exported() }
        config.upgrade.reclaim = {
            liveCore.resumeSubscriptions()
            guard let store = storeHandle.store.withLock({ $0 }) else { return }
            // The new process may still be on its way out, holding the log: a few tries.
            for attempt in 0..<50 {
                do {
                    try store.resume()
                    return
                } catch where attempt < 49 {
                    usleep(100_000)
                }
            }
        }
        if let addrs = getenv("FCGI_WEB_SERVER_ADDRS").map({ String(cString: $0) }), !addrs.isEmpty {
            config.fastCGI.allowedPeers = addrs.split(separator: ",").map { $0.trimmingCharacters() }
        }

        if fastcgiImpl == "libfcgi" {
            let fcgiListeners = listeners.filter {
                switch $0 {
                case .http, .https: return false
                default: return true
                }
            }
            guard fcgiListeners.count == 1, listeners.count == 1 else {
                throw ValidationError("--fastcgi-impl libfcgi serves exactly one FastCGI listener and no --http")
            }
            try LibFCGIResponder.run(
                responder: app, listener: fcgiListeners[0], threads: config.loops * 4,
                maxBodyBytes: maxBody, socketMode: config.unixSocketMode, logger: logger)
            return
        }

        let server: Server
        do {
            server = try Server(responder: app, listeners: listeners, configuration: config, logger: logger)
        } catch {
            predecessor?.failed("\(error)")
            logger.critical("\(error)")
            throw ExitCode(1)
        }
        let shown = zip(listeners, server.addresses).map { listener, address -> String in
            switch listener {
            case .http: return address.isUnix ? "HTTP on \(address)" : "http://\(address)"
            case .https: return "https://\(address)"
            case .fastCGI: return "FastCGI on \(address)"
            case .fastCGIInherited: return "FastCGI on inherited fd 0 (\(address))"
            }
        }.joined(separator: ", ")
        logger.info("needletail-demo listening on \(shown) with \(config.loops) loop(s)")
        do { try server.runUntilSignalled(succeeding: predecessor) } catch {
            predecessor?.failed("\(error)")
            logger.critical("\(error)")
            throw ExitCode(1)
        }
        logger.info("stopped")
    }
}

extension Serve {
    /// Connects to PostgreSQL at `url` and opens the board, the sessions and the channels there
    /// (at start, on this thread, before any loop runs).
    static func openShared(_ url: String, onError: @escaping @Sendable (String) -> Void) throws -> (Board.Source, LiveAppCore) {
        let configuration = PostgresConfiguration(url)
        try configuration.validate()
        let client = try PostgresClient(configuration)
        return try ThreadExecutor.run {
            let channels = Channels(ordered: true)
            let board = try await PostgresBoard.open(on: client, channels: channels, onError: onError)
            let sessions = SessionStore(backing: try await SharedSessions.open(on: client))
            return (Board.Source.postgres(board), LiveAppCore(sessions: sessions, channels: channels, onError: onError))
        }
    }
}

extension Substring {
    func trimmingCharacters() -> String {
        String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}

extension SocketAddress {
    var isUnix: Bool {
        if case .unix = self { return true }
        return false
    }
}

Demo.main()
