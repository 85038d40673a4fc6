import PeerPages
import Vapor

// vapor-peer PORT
let port = CommandLine.arguments.dropFirst().first ?? "8080"
var env = Environment(name: "production", arguments: ["vapor-peer", "serve", "--hostname", "127.0.0.1", "--port", port])
try LoggingSystem.bootstrap(from: &env)
let app = try await Application.make(env)
func html(_ text: String) -> Response {
    Response(status: .ok, headers: ["Content-Type": "text/html; charset=utf-8"], body: .init(string: text))
}
app.get("hello") { req -> Response in html(PeerPages.hello(req.query[String.self, at: "name"])) }
app.get("fortunes") { _ -> Response in html(PeerPages.fortunes()) }
try await app.execute()
try await app.asyncShutdown()
