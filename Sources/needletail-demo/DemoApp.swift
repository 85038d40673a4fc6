import Needletail

/// The demo application: ordinary app code, the same whichever way it is served.
enum DemoApp {
    static func router() -> Router {
        var router = Router()

        // The talk's framework-overhead benchmark: <h1>Hello NAME</h1>, NAME escaped.
        router.get("/hello") { request in
            var page = Chunks()
            page.append("<h1>Hello ")
            page.append(escaping: request.query["name"] ?? "world")
            page.append("</h1>")
            return .html(page)
        }

        router.get("/") { _ in
            var page = Chunks()
            page.append("<!DOCTYPE html>\n<title>Needletail</title>\n<h1>Needletail demo</h1>\n")
            page.append("<p><a href=\"/hello?name=world\">/hello?name=world</a></p>\n")
            return .html(page)
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
