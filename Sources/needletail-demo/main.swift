import ArgumentParser
import Glibc
import Logging
import Needletail

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "needletail-demo",
        abstract: "The Needletail demo application.",
        subcommands: [Serve.self],
        defaultSubcommand: Serve.self)
}

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the demo app natively over HTTP/1.1.")

    @Option(name: .long, help: "Listen for HTTP on HOST:PORT, [IPv6]:PORT or unix:/path (repeatable).")
    var http: [String] = []

    @Option(name: .long, help: "Number of event loops (threads). Default: one per CPU.")
    var loops: Int?

    @Option(name: .long, help: "Largest request body in bytes (over it: 413).")
    var maxBody: Int = 1 << 20

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func validate() throws {
        if let l = loops, l < 1 || l > 1024 { throw ValidationError("--loops must be between 1 and 1024") }
        if maxBody < 0 { throw ValidationError("--max-body must not be negative") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level \(logLevel)") }
    }

    func run() throws {
        LoggingSystem.bootstrap(StreamLogHandler.standardError)
        var logger = Logger(label: "needletail")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info

        var addresses: [SocketAddress] = []
        for text in http.isEmpty ? ["127.0.0.1:8080"] : http {
            do { addresses.append(try SocketAddress(parsing: text)) } catch {
                throw ValidationError(error.description)
            }
        }
        var config = ServerConfiguration()
        if let l = loops { config.loops = l }
        config.http.maxBodyBytes = maxBody

        let server: Server
        do {
            server = try Server(responder: DemoApp.router(), http: addresses, configuration: config, logger: logger)
        } catch {
            logger.critical("\(error.description)")
            throw ExitCode(1)
        }
        let shown = server.addresses.map { a -> String in
            if case .unix = a { return a.description }
            return "http://\(a)"
        }.joined(separator: ", ")
        logger.info("needletail-demo listening on \(shown) with \(config.loops) loop(s)")
        server.runUntilSignalled()
        logger.info("stopped")
    }
}

Demo.main()
