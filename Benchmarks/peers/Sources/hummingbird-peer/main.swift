import Hummingbird
import PeerPages

// hummingbird-peer PORT
let port = Int(CommandLine.arguments.dropFirst().first ?? "") ?? 8080
let router = Router()
func html(_ text: String) -> Response {
    Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: text)))
}
router.get("hello") { request, _ -> Response in html(PeerPages.hello(request.uri.queryParameters["name"].map(String.init))) }
router.get("fortunes") { _, _ -> Response in html(PeerPages.fortunes()) }
let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)))
try await app.runService()
