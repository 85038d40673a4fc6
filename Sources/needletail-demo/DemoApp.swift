import Glibc
import Needletail

/// The demo application: ordinary app code, the same whichever way it is served.
enum DemoApp {
    /// The whole app: the plain routes below plus the live message board, whose records live
    /// in `board` (posts are acknowledged only once durable: fsync'd log, or committed), opened
    /// at once when `openNow` (else on the first visit to the board). A CGI run (`cgi`) serves
    /// no board: it would keep no sessions or channels between requests. `core`: the sessions
    /// and channels (shared through PostgreSQL with several backends).
    static func app(
        board: Board.Source, core: LiveAppCore = LiveAppCore(), publicDirectory: String?, openNow: Bool = false, cgi: Bool = false,
        syncBoardWrites: Bool = false, onError: @escaping @Sendable (String) -> Void
    ) -> LiveApp {
        var app = LiveApp(router: router(), core: core)
        if let dir = publicDirectory {
            app.staticFiles = StaticFiles(root: dir, prefix: "/static/")
            if app.staticFiles == nil { onError("--public \(dir) is not a directory; /static/ is not served") }
        }
        if cgi {
            app.router.get("/board") { _ in
                Router.errorPage(
                    .serviceUnavailable,
                    detail:
                        "The message board needs a long-running process (FastCGI or HTTP): a CGI run keeps no sessions or live channels between requests."
                )
            }
        } else {
            Board.install(into: &app, source: board, openNow: openNow, syncWrites: syncBoardWrites, onError: onError)
        }
        return app
    }

    static func router() -> Router {
        var router = Router()

        // The talk's framework-overhead benchmark: <h1>Hello NAME</h1>, NAME escaped.
        router.get("/hello") { request in
            .html(
                H1 {
                    "Hello "; request.query["name"] ?? "world"
                })
        }

        router.get("/") { _ in
            .html(
                Html {
                    Head {
                        Meta().charset("utf-8"); Title("Needletail")
                        Link().rel("icon").href(trusted: "data:,")  // no favicon request (and no 404 in the console)
                    }
                    Body {
                        H1("Needletail demo")
                        // Relative links: the app may be mounted under a prefix (CGI at /app/).
                        P { A("/hello?name=world").href("hello?name=world") }
                        P { A("The message board").href("board") }
                    }
                }.lang("en"))
        }

        // The same page from an async handler (one that never suspends): the cost of the task.
        router.get("/hello-async") { request async throws -> Response in
            .html(H1 { "Hello "; request.query["name"] ?? "world" })
        }

        // Waiting without blocking: the loop's timer, N ms (at most 1000), while it serves others.
        router.get("/wait") { request async throws -> Response in
            let ms = min(max(try request.parameter("ms", default: 0), 0), 1000)
            try await Waiting.sleep(milliseconds: ms)
            return .text("waited \(ms) ms\n")
        }

        router.get("/fortunes") { _ in Fortunes.page() }

        // Browsers ask every site for an icon; pages without an icon link (hello, Fortunes)
        // would otherwise log a 404 in the console. No content: the browser shows its default.
        router.get("/favicon.ico") { _ in
            Response(status: .noContent, headers: [("Cache-Control", "public, max-age=86400")])
        }

        // Echoes a request body's size and digest (tests of bodies and chunked uploads).
        router.post("/echo") { request in
            var sum: UInt32 = 0
            for b in request.body { sum = sum &* 31 &+ UInt32(b) }
            return .text("\(request.body.count) \(sum)\n")
        }
        return router
    }
}
