import Glibc
import NeedletailBytes
import NeedletailHTTP
import Synchronization

/// An app's answer as a test sees it.
public struct TestResponse: Sendable {
    public let status: HTTPStatus
    public let contentType: String?
    public let headers: [HeaderField]
    /// The body's bytes (a streamed body: what was written before it finished or the wait ended).
    public let body: [UInt8]
    /// Whether a streamed body finished (always true for other bodies).
    public let finished: Bool

    /// A header field of the answer.
    public struct HeaderField: Sendable, Equatable {
        public let name: String
        public let value: String
    }

    /// The body as UTF-8 text.
    public var text: String { String(decoding: body, as: UTF8.self) }

    /// The first field called `name` (any letter case).
    public func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    /// The addresses of the page's action forms (`/_nt/a/…`), in document order.
    public var actionPaths: [String] {
        let marker = Array("action=\"/_nt/a/".utf8)
        var found: [String] = []
        var i = 0
        while i + marker.count <= body.count {
            if body[i] == marker[0] && Array(body[i..<(i + marker.count)]) == marker {
                let start = i + marker.count
                var end = start
                while end < body.count && body[end] != UInt8(ascii: "\"") { end += 1 }
                found.append("/_nt/a/" + String(decoding: body[start..<end], as: UTF8.self))
                i = end
            } else {
                i += 1
            }
        }
        return found
    }
}

/// A browser for an app's own tests, without sockets: it sends requests straight to the app's
/// `Responder`, keeps the cookies the app sets (as a browser would, by name), and reads streamed
/// answers (server-sent events, long-polls) until they finish or a wait ends.
///
/// ```swift
/// let browser = TestBrowser(app)
/// let page = browser.get("/counter")
/// #expect(page.status == .ok)
/// browser.post(page.actionPaths[0])            // the page's first action form, as its session
/// #expect(browser.get("/counter").text.contains("<p>1</p>"))
/// ```
public final class TestBrowser {
    public let app: any Responder
    /// Cookies kept from `Set-Cookie` fields, sent back with each request.
    public private(set) var cookies: [(name: String, value: String)] = []
    /// Headers sent with every request (a `Sec-Fetch-Site`, say).
    public var defaultHeaders: [(String, String)] = []

    public init(_ app: any Responder) { self.app = app }

    /// GET `target` (a path with an optional query: `/board?forum=Debian`). A streamed answer
    /// is read for up to `wait` seconds.
    @discardableResult
    public func get(_ target: String, headers: [(String, String)] = [], wait: Double = 1) -> TestResponse {
        send(.get, target, headers: headers, body: [], wait: wait)
    }

    /// POST `form` (`name=value&…`, already encoded) to `target` as a form would.
    @discardableResult
    public func post(_ target: String, form: String = "", headers: [(String, String)] = [], wait: Double = 1) -> TestResponse {
        send(.post, target, headers: [("Content-Type", "application/x-www-form-urlencoded")] + headers, body: Array(form.utf8), wait: wait)
    }

    /// Sends a request with this browser's cookies; keeps the cookies of the answer.
    public func send(
        _ method: HTTPMethod, _ target: String, headers: [(String, String)] = [], body: [UInt8] = [], wait: Double = 1
    ) -> TestResponse {
        var fields = defaultHeaders + headers
        if !cookies.isEmpty { fields.append(("Cookie", cookies.map { $0.name + "=" + $0.value }.joined(separator: "; "))) }
        let question = target.firstIndex(of: "?")
        let rawPath = String(target[..<(question ?? target.endIndex)])
        let query = question.map { String(target[target.index(after: $0)...]) } ?? ""
        let request = Request(
            method: method, path: PercentDecoding.decodePathString(rawPath) ?? rawPath, query: QueryParameters(query),
            headers: HeaderFields(fields), body: body, host: "test", target: target)
        let response = app.respond(to: request).waited().response  // an async handler: waited for here
        let answer = Self.collect(response, wait: wait)
        for field in answer.headers where field.name.lowercased() == "set-cookie" { keep(field.value) }
        return answer
    }

    /// The value of cookie `name`, if the app has set it.
    public func cookie(_ name: String) -> String? { cookies.first { $0.name == name }?.value }

    private func keep(_ setCookie: String) {
        let pair = setCookie.split(separator: ";", maxSplits: 1).first.map(String.init) ?? ""
        guard let eq = pair.firstIndex(of: "=") else { return }
        let name = String(pair[..<eq]).trimmingCharacters(), value = String(pair[pair.index(after: eq)...]).trimmingCharacters()
        cookies.removeAll { $0.name == name }
        if !value.isEmpty { cookies.append((name, value)) }
    }

    /// The response as bytes: its chunks, its file, or what its stream writes within `wait`.
    static func collect(_ response: Response, wait: Double) -> TestResponse {
        var r = response
        let headers = r.allHeaders.map { TestResponse.HeaderField(name: $0.name, value: $0.value) }
        if let produce = r.body.stream {
            let sink = CollectingSink()
            produce(ResponseStream(sink: sink))
            let finished = sink.wait(seconds: wait)
            sink.cancel()
            return TestResponse(status: r.status, contentType: r.contentType, headers: headers, body: sink.bytes, finished: finished)
        }
        _ = r.loadFileBody()
        return TestResponse(status: r.status, contentType: r.contentType, headers: headers, body: Array(r.body.string.utf8), finished: true)
    }
}

/// A stream sink that keeps what is written, for `TestBrowser`.
final class CollectingSink: ResponseStreamSink {
    private let state = Mutex<(bytes: [UInt8], finished: Bool, cancelled: Bool)>(([], false, false))

    func write(_ chunks: consuming ChunksTransfer) {
        let text = chunks.take().string
        state.withLock { $0.bytes += text.utf8 }
    }

    func finish() { state.withLock { $0.finished = true } }

    var isCancelled: Bool { state.withLock { $0.cancelled || $0.finished } }

    func cancel() { state.withLock { $0.cancelled = true } }

    var bytes: [UInt8] { state.withLock { $0.bytes } }

    /// Waits up to `seconds` for the stream to finish; whether it did.
    func wait(seconds: Double) -> Bool {
        var waited = 0.0
        while !state.withLock({ $0.finished }) {
            if waited >= seconds { return false }
            usleep(5_000)
            waited += 0.005
        }
        return true
    }
}

extension String {
    func trimmingCharacters() -> String {
        String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}
