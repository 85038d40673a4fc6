import Glibc
import Foundation
import Synchronization
@testable import NeedletailLoop
import NeedletailHTTP
import NeedletailBytes
import NeedletailHTML
import NeedletailStore
import NeedletailStoreTestSupport
@testable import NeedletailServer

/// A blocking socket client for tests: raw bytes in, parsed responses out.
public final class TestClient {
    public let fd: Int32
    private var buffer: [UInt8] = []

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        public init(description: String) { self.description = description }
    }

    public init(_ address: SocketAddress, timeout: Int = 5) throws {
        let family: Int32
        switch address {
        case .ipv4: family = AF_INET
        case .ipv6: family = AF_INET6
        case .unix: family = AF_UNIX
        }
        // The socket stays a local until it is connected: a throw after `self.fd` is set runs
        // deinit, and closing here as well would close a number another thread may own by then.
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(errno)") }
        var tv = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let rc = try address.withSockaddr { sa, len in connect(fd, sa, len) }
        guard rc == 0 else {
            let e = errno
            Glibc.close(fd)
            throw Failure(description: "connect: \(String(cString: strerror(e)))")
        }
        self.fd = fd
    }

    deinit { Glibc.close(fd) }

    public func send(_ text: String) throws { try send(Array(text.utf8)) }

    public func send(_ bytes: [UInt8]) throws {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw Failure(description: "send failed: \(String(cString: strerror(errno)))") }
            off += n
        }
    }

    /// Reads more bytes; returns false at end of stream.
    @discardableResult
    public func fill() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, 65536, 0) }
        if n < 0 {
            if errno == ECONNRESET { return false }
            throw Failure(description: "recv failed or timed out: \(String(cString: strerror(errno)))")
        }
        if n == 0 { return false }
        buffer.append(contentsOf: chunk[0..<n])
        return true
    }

    /// Reads exactly `n` bytes, or `nil` at end of stream.
    public func readExactly(_ n: Int) throws -> [UInt8]? {
        while buffer.count < n {
            guard try fill() else { return nil }
        }
        let out = Array(buffer[0..<n])
        buffer.removeFirst(n)
        return out
    }

    /// Reads everything until the server closes.
    public func readToEnd() throws -> [UInt8] {
        while try fill() {}
        defer { buffer = [] }
        return buffer
    }

    /// Whether the server has closed the connection (reads EOF within the timeout).
    public func isClosedByServer() -> Bool {
        (try? readToEnd()) != nil
    }

    public struct Response {
        public var status: Int
        public var headers: [(String, String)]
        public var body: [UInt8]
        public var text: String { String(decoding: body, as: UTF8.self) }
        public func header(_ name: String) -> String? {
            headers.first { $0.0.lowercased() == name.lowercased() }?.1
        }
    }

    /// Reads one response (Content-Length or chunked framing; `headOnly` for HEAD).
    public func readResponse(headOnly: Bool = false) throws -> Response {
        var headEnd: Int?
        while headEnd == nil {
            if let r = findCRLFCRLF() { headEnd = r; break }
            guard try fill() else { throw Failure(description: "connection closed before a response head (\(buffer.count) bytes)") }
        }
        let head = String(decoding: buffer[0..<headEnd!], as: UTF8.self)
        buffer.removeFirst(headEnd! + 4)
        var lines = head.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst()
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, let status = Int(parts[1]) else { throw Failure(description: "bad status line \(statusLine)") }
        let headers = lines.map { l -> (String, String) in
            let c = l.firstIndex(of: ":")!
            return (String(l[..<c]), String(l[l.index(after: c)...]).trimmingCharacters(in: " "))
        }
        var r = Response(status: status, headers: headers, body: [])
        if headOnly || status == 204 || status == 304 || status < 200 { return r }
        if let cl = r.header("content-length"), let n = Int(cl) {
            while buffer.count < n { guard try fill() else { throw Failure(description: "short body") } }
            r.body = Array(buffer[0..<n])
            buffer.removeFirst(n)
        } else if r.header("transfer-encoding")?.lowercased() == "chunked" {
            r.body = try readChunkedBody()
        } else {
            r.body = try readToEnd()
        }
        return r
    }

    private func readChunkedBody() throws -> [UInt8] {
        var out: [UInt8] = []
        while true {
            var lineEnd: Int?
            while lineEnd == nil {
                lineEnd = findCRLF()
                if lineEnd == nil { guard try fill() else { throw Failure(description: "eof in chunked body") } }
            }
            let size = Int(String(decoding: buffer[0..<lineEnd!], as: UTF8.self), radix: 16) ?? -1
            buffer.removeFirst(lineEnd! + 2)
            if size == 0 {
                while findCRLF() != 0 { guard try fill() else { throw Failure(description: "eof in trailers") } }
                buffer.removeFirst(2)
                return out
            }
            while buffer.count < size + 2 { guard try fill() else { throw Failure(description: "eof in chunk") } }
            out += buffer[0..<size]
            buffer.removeFirst(size + 2)
        }
    }

    private func findCRLFCRLF() -> Int? {
        guard buffer.count >= 4 else { return nil }
        for i in 0...(buffer.count - 4) where buffer[i] == 13 && buffer[i + 1] == 10 && buffer[i + 2] == 13 && buffer[i + 3] == 10 {
            return i
        }
        return nil
    }

    private func findCRLF() -> Int? {
        guard buffer.count >= 2 else { return nil }
        for i in 0...(buffer.count - 2) where buffer[i] == 13 && buffer[i + 1] == 10 { return i }
        return nil
    }
}

extension String {
    public func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s = s.dropFirst() }
        while let l = s.last, set.contains(l) { s = s.dropLast() }
        return String(s)
    }

    public func components(separatedBy sep: String) -> [String] {
        var out: [String] = []
        var rest = Substring(self)
        while let r = rest.firstRange(of: sep) {
            out.append(String(rest[..<r.lowerBound]))
            rest = rest[r.upperBound...]
        }
        out.append(String(rest))
        return out
    }
}

/// A server on an ephemeral loopback port, stopped at the end of `body`.
@discardableResult
public func withServer<T>(
    loops: Int = 1, limits: HTTPLimits = HTTPLimits(), loopConfig: LoopConfiguration = LoopConfiguration(),
    addresses: [SocketAddress] = [.ipv4(host: "127.0.0.1", port: 0)],
    responder: any Responder = TestApp.withStreaming(TestApp.router()), configure: (inout ServerConfiguration) -> Void = { _ in },
    _ body: (Server, SocketAddress) throws -> T
) throws -> T {
    var config = ServerConfiguration()
    config.loops = loops
    config.http = limits
    config.loop = loopConfig
    configure(&config)
    let server = try Server(responder: responder, http: addresses, configuration: config)
    try server.start()
    defer {
        server.shutdown(grace: 1)
        server.wait()
    }
    return try body(server, server.addresses[0])
}

/// A FastCGI server of the test app on an ephemeral loopback port (and `unixPath`, if given),
/// stopped at the end of `body`, which gets the TCP address.
@discardableResult
public func withFastCGI<T>(unixPath: String? = nil, _ body: (Server, SocketAddress) throws -> T) throws -> T {
    var config = ServerConfiguration()
    config.loops = 1
    config.unixSocketMode = 0o666
    var listeners: [Listener] = [.fastCGI(.ipv4(host: "127.0.0.1", port: 0))]
    if let p = unixPath { listeners.append(.fastCGI(.unix(path: p))) }
    let server = try Server(responder: TestApp.withAsync(TestApp.withStreaming(TestApp.router())), listeners: listeners, configuration: config)
    try server.start()
    defer {
        server.shutdown(grace: 1)
        server.wait()
    }
    return try body(server, server.addresses[0])
}

/// Routes used by the socket tests.
public enum TestApp {
    public static func router() -> Router {
        var r = Router()
        r.get("/hello") { req in
            var c = Chunks()
            c.append("<h1>Hello ")
            c.append(escaping: req.query["name"] ?? "world")
            c.append("</h1>")
            return .html(c)
        }
        r.post("/echo") { req in
            var c = Chunks()
            req.body.withUnsafeBytes { c.append(copying: $0) }
            var resp = Response(status: .ok, contentType: "application/octet-stream", body: c)
            if let t = req.trailers["x-checksum"] { resp.addHeader("X-Trailer-Checksum", t) }
            return resp
        }
        r.get("/big") { req in
            let n = Int(req.query["n"] ?? "65536") ?? 65536
            var c = Chunks()
            let b = c.buffer(reserving: n)
            for i in 0..<n { b.append(UInt8(97 + i % 26)) }
            return Response(status: .ok, contentType: "text/plain", body: c)
        }
        r.get("/static") { _ in
            var c = Chunks()
            c.append(static: TestApp.bigStatic)
            c.append(escaping: "<end>")
            return .html(c)
        }
        r.get("/slow") { req in
            usleep(UInt32(Int(req.query["ms"] ?? "300")! * 1000))
            return .text("slow done")
        }
        r.get("/info") { req in
            .text(
                "\(req.method.rawValue) \(req.path) \(req.target) host=\(req.host ?? "-") remote=\(req.remoteAddress) secure=\(req.isSecure) "
                    + "ua=\(req.headers["user-agent"] ?? "-") len=\(req.body.count)")
        }
        r.get("/headers") { req in
            .text(req.headers.values(req.query["name"] ?? "x").joined(separator: "|") + "\n" + (req.host ?? "-"))
        }
        r.get("/badheader") { _ in
            var resp = Response.text("ok")
            resp.addHeader("X-Evil", "a\r\nSet-Cookie: pwned=1")
            resp.addHeader("X-Good", "fine")
            return resp
        }
        return r
    }

    nonisolated(unsafe) public static let bigStatic: UnsafeRawBufferPointer = {
        let n = 4096
        let p = UnsafeMutableRawPointer.allocate(byteCount: n, alignment: 1)
        for i in 0..<n { p.storeBytes(of: UInt8(65 + i % 26), toByteOffset: i, as: UInt8.self) }
        return UnsafeRawBufferPointer(start: p, count: n)
    }()
}

/// Resident memory of this process in bytes.
public func residentBytes() -> Int {
    guard let f = fopen("/proc/self/statm", "r") else { return 0 }
    defer { fclose(f) }
    var size = 0, rss = 0
    withUnsafeMutablePointer(to: &size) { s in
        withUnsafeMutablePointer(to: &rss) { r in
            _ = withVaList([s, r]) { vfscanf(f, "%ld %ld", $0) }
        }
    }
    return rss * Int(sysconf(Int32(_SC_PAGESIZE)))
}

extension TestApp {
    /// `/stream?n=3`: n chunks written from another thread 20 ms apart, then the end.
    public static func withStreaming(_ base: Router) -> Router {
        var r = base
        let stream: Handler = { req in
            let n = Int(req.query["n"] ?? "3") ?? 3
            return .streaming(contentType: "text/plain") { stream in
                let t = Thread {
                    for i in 0..<n {
                        usleep(20_000)
                        stream.write("part \(i)\n")
                    }
                    stream.finish()
                }
                t.start()
            }
        }
        let forever: Handler = { _ in
            .streaming(contentType: "text/event-stream") { stream in
                stream.write("data: hello\n\n")
                // Never finishes: the client goes away.
                let t = Thread {
                    while !stream.isCancelled { usleep(10_000) }
                    TestApp.cancelledStreams.add(1, ordering: .relaxed)
                }
                t.start()
            }
        }
        for prefix in ["", "/live"] {
            r.get(prefix + "/stream", stream)
            r.get(prefix + "/forever", forever)
        }
        return r
    }

    public static let cancelledStreams = Atomic<Int>(0)
}

extension TestApp {
    /// Requests whose async handler saw its task cancelled (`/async/hold`).
    public static let cancelledTasks = Atomic<Int>(0)
    /// Async handlers that found themselves off their loop's thread (`/async/threads`).
    public static let offLoop = Atomic<Int>(0)

    /// Async routes: `/async/wait?ms=N` (the loop's timer), `/async/hold` (waits up to 60 s,
    /// counting its cancellation), `/async/threads` (checks the thread before and after each
    /// kind of await), `/async/fail` (throws: 500), `/async/bad?n=x` (a wrong parameter: 400),
    /// `/async/slow` (deadline 200 ms, waits 5 s: 503), `/async/now` (never suspends).
    public static func withAsync(_ base: Router, store table: RecordTable<SampleRecord>? = nil) -> Router {
        var r = base
        if let table {
            // `/async/insert?k=N`: a durable insert; the loop serves others until it is synced.
            r.post("/async/insert") { request async throws -> Response in
                let key = try request.parameter("k", default: 0)
                let id = try await table.insert(SampleRecord(key: key, text: "async \(key)"))
                if EventLoop.current == nil { TestApp.offLoop.add(1, ordering: .relaxed) }
                return .text("stored \(id)")
            }
        }
        r.get("/async/wait") { request async throws -> Response in
            let ms = try request.parameter("ms", default: 0)
            try await Waiting.sleep(milliseconds: ms)
            return .text("waited \(ms) ms")
        }
        r.get("/async/hold") { _ async throws -> Response in
            do {
                try await Waiting.sleep(milliseconds: 60_000)
            } catch is CancellationError {
                TestApp.cancelledTasks.add(1, ordering: .relaxed)
                throw CancellationError()
            }
            return .text("held")
        }
        r.get("/async/threads") { _ async throws -> Response in
            func check() { if EventLoop.current == nil { TestApp.offLoop.add(1, ordering: .relaxed) } }
            check()
            try await Waiting.sleep(milliseconds: 1)
            check()
            let sum = try await Waiting.run { (1...1000).reduce(0, +) }  // on a worker thread
            check()
            try await Task.sleep(nanoseconds: 1_000_000)  // the global executor's timer
            check()
            if await !onALoop() { TestApp.offLoop.add(1, ordering: .relaxed) }  // a plain async function
            check()
            return .text("sum \(sum)")
        }
        r.get("/async/fail") { _ async throws -> Response in
            try await Waiting.sleep(milliseconds: 1)
            struct Broken: Error {}
            throw Broken()
        }
        r.get("/async/bad") { request async throws -> Response in
            try await Waiting.sleep(milliseconds: 1)
            return .text("\(try request.parameter("n", default: 0))")
        }
        r.get("/async/slow", deadline: 200) { _ async throws -> Response in
            try await Waiting.sleep(milliseconds: 5_000)
            return .text("too late")
        }
        // Reads its request after a wait, when the connection has parsed the next heads.
        r.get("/async/later") { request async throws -> Response in
            try await Waiting.sleep(milliseconds: try request.parameter("ms", default: 0))
            return .text("later \(request.query["x"] ?? "") \(request.headers["x-tag"] ?? "")")
        }
        r.get("/async/now") { request async throws -> Response in
            .text("now \(request.query["x"] ?? "")")
        }
        return r
    }
}

/// A plain (nonisolated, concurrent) async function: where it runs says whether the loop is
/// the task's executor preference.
func onALoop() async -> Bool {
    await Task.yield()
    return EventLoop.current != nil
}
