import ArgumentParser
import Glibc
import Logging
import Needletail
import NeedletailFCGICompat

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

    @ArgumentParser.Option(name: .long, help: "Folder for the message board's records (created if missing).")
    var data: String = "needletail-data"

    @ArgumentParser.Option(name: .long, help: "Folder whose files are served under /static/ (sendfile, ETag, ranges).")
    var `public`: String?

    @ArgumentParser.Option(name: .long, help: "A field every response gets, as \"Name: value\" (repeatable; e.g. \"Server: needletail\"). X-Content-Type-Options: nosniff is always added.")
    var header: [String] = []

    @ArgumentParser.Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func validate() throws {
        if let l = loops, l < 1 || l > 1024 { throw ValidationError("--loops must be between 1 and 1024") }
        if maxBody < 0 { throw ValidationError("--max-body must not be negative") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level \(logLevel)") }
        guard ["native", "libfcgi"].contains(fastcgiImpl) else { throw ValidationError("--fastcgi-impl is native or libfcgi") }
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

    func run() throws {
        LoggingSystem.bootstrap(StreamLogHandler.standardError)
        var logger = Logger(label: "needletail")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        let errorLogger = logger
        let app = DemoApp.app(dataDirectory: data, publicDirectory: `public`) { errorLogger.error("\($0)") }

        if http.isEmpty && fastcgi.isEmpty && CGIResponder.isCGIRequest {
            throw ExitCode(CGIResponder.serveOne(responder: app, maxBodyBytes: maxBody))
        }

        var listeners: [Listener] = []
        do {
            listeners += try http.map { .http(try SocketAddress(parsing: $0)) }
            listeners += try fastcgi.map { .fastCGI(try SocketAddress(parsing: $0)) }
        } catch let error as SocketError {
            throw ValidationError(error.description)
        }
        let inherited = listeners.isEmpty && ListeningSocket.isListeningSocket(0)
        if listeners.isEmpty {
            listeners = inherited ? [.fastCGIInherited(fd: 0)] : [.http(.ipv4(host: "127.0.0.1", port: 8080))]
        }

        var config = ServerConfiguration()
        if let l = loops { config.loops = l }
        config.http.maxBodyBytes = maxBody
        config.fastCGI.maxBodyBytes = maxBody
        config.unixSocketMode = socketMode.flatMap { mode_t($0, radix: 8) }
        config.defaultFields = DefaultFields(DefaultFields.standard.fields + header.map(Self.field))
        if let addrs = getenv("FCGI_WEB_SERVER_ADDRS").map({ String(cString: $0) }), !addrs.isEmpty {
            config.fastCGI.allowedPeers = addrs.split(separator: ",").map { $0.trimmingCharacters() }
        }

        if fastcgiImpl == "libfcgi" {
            let fcgiListeners = listeners.filter { if case .http = $0 { return false }; return true }
            guard fcgiListeners.count == 1, listeners.count == 1 else {
                throw ValidationError("--fastcgi-impl libfcgi serves exactly one FastCGI listener and no --http")
            }
            try LibFCGIResponder.run(responder: app, listener: fcgiListeners[0], threads: config.loops * 4,
                                     maxBodyBytes: maxBody, socketMode: config.unixSocketMode, logger: logger)
            return
        }

        let server: Server
        do {
            server = try Server(responder: app, listeners: listeners, configuration: config, logger: logger)
        } catch {
            logger.critical("\(error.description)")
            throw ExitCode(1)
        }
        let shown = zip(listeners, server.addresses).map { listener, address -> String in
            switch listener {
            case .http: return address.isUnix ? "HTTP on \(address)" : "http://\(address)"
            case .fastCGI: return "FastCGI on \(address)"
            case .fastCGIInherited: return "FastCGI on inherited fd 0 (\(address))"
            }
        }.joined(separator: ", ")
        logger.info("needletail-demo listening on \(shown) with \(config.loops) loop(s)")
        server.runUntilSignalled()
        logger.info("stopped")
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
