import Glibc
import Needletail

/// The demo application: ordinary app code, the same whichever way it is served.
enum DemoApp {
    /// The whole app: the plain routes below plus the live message board, whose records live
    /// in `dataDirectory` (posts are acknowledged only once fsync'd: policy always).
    static func app(dataDirectory: String, publicDirectory: String?, onError: @escaping @Sendable (String) -> Void) -> LiveApp {
        var app = LiveApp(router: router())
        if let dir = publicDirectory {
            app.staticFiles = StaticFiles(root: dir, prefix: "/static/")
            if app.staticFiles == nil { onError("--public \(dir) is not a directory; /static/ is not served") }
        }
        Board.install(into: &app, path: dataDirectory + "/board.log", onError: onError)
        return app
    }

    static func router() -> Router {
        var router = Router()

        // The talk's framework-overhead benchmark: <h1>Hello NAME</h1>, NAME escaped.
        router.get("/hello") { request in
            .html(H1 { "Hello "; request.query["name"] ?? "world" })
        }

        router.get("/") { _ in
            .html(Html {
                Head { Meta().charset("utf-8"); Title("Needletail") }
                Body {
                    H1("Needletail demo")
                    P { A("/hello?name=world").href("/hello?name=world") }
                    P { A("The message board").href("/board") }
                }
            }.lang("en"))
        }

        router.get("/fortunes") { _ in Fortunes.page() }

        // Echoes a request body's size and digest (tests of bodies and chunked uploads).
        router.post("/echo") { request in
            var sum: UInt32 = 0
            for b in request.body { sum = sum &* 31 &+ UInt32(b) }
            return .text("\(request.body.count) \(sum)\n")
        }
        return router
    }
}
