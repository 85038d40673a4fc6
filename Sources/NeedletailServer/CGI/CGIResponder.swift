import Glibc
import NeedletailLoop
import NeedletailBytes
import NeedletailHTTP
import Synchronization

/// Plain CGI (RFC 3875): one request from the environment and standard input, the answer on
/// standard output, then the process exits. For CGI hosts such as lighttpd's mod_cgi.
public enum CGIResponder {
    /// Whether this process was started as a CGI program: GATEWAY_INTERFACE is set and fd 0 is
    /// not a listening socket.
    public static var isCGIRequest: Bool {
        getenv("GATEWAY_INTERFACE") != nil && !ListeningSocket.isListeningSocket(0)
    }

    /// Serves the one request and returns the exit status (0 when an answer was written).
    public static func serveOne(responder: any Responder, maxBodyBytes: Int = 1 << 20) -> Int32 {
        var params: [(name: String, value: String)] = []
        var e = environ
        while let entry = e.pointee {
            let s = String(cString: entry)
            if let eq = s.firstIndex(of: "=") {
                params.append((String(s[..<eq]), String(s[s.index(after: eq)...])))
            }
            e += 1
        }
        // A CGI program is mounted at SCRIPT_NAME; the app's own path is PATH_INFO.
        if let pathInfo = params.first(where: { $0.name == "PATH_INFO" })?.value, !pathInfo.isEmpty {
            let query = params.first { $0.name == "QUERY_STRING" }?.value ?? ""
            let uri = CGIGateway.encodePath(pathInfo) + (query.isEmpty ? "" : "?" + query)
            params.removeAll { $0.name == "REQUEST_URI" }
            params.append(("REQUEST_URI", uri))
        }
        let length = Int(params.first { $0.name == "CONTENT_LENGTH" }?.value ?? "") ?? 0
        var response: Response
        if length > maxBodyBytes {
            response = CGIGateway.refusalResponse(.init(status: .contentTooLarge, reason: "request body larger than \(maxBodyBytes) bytes"))
        } else {
            var body = [UInt8](repeating: 0, count: max(length, 0))
            var got = 0
            while got < length {
                let n = body.withUnsafeMutableBytes { read(0, $0.baseAddress! + got, length - got) }
                if n <= 0 { break }
                got += n
            }
            body.removeLast(length - got)
            do {
                let request = try CGIGateway.request(from: params, body: body)
                let answer = responder.respond(to: request).waited()  // an async handler: waited for here
                if let failure = answer.failure { reportToStandardError("needletail: \(failure)") }
                response = answer.response
                _ = response.loadFileBody()
                if let produce = response.body.stream, request.method != .head {
                    return stream(response, produce: produce)
                }
            } catch {
                response = CGIGateway.refusalResponse(error)
            }
        }
        let head = ByteBuffer(capacity: 256)
        CGIGateway.encodeHead(response, contentLength: response.body.count, into: head) { name in
            let line = Array("needletail: dropped unsafe response header \(name)\n".utf8)
            line.withUnsafeBytes { writeAll($0, fd: 2) }
        }
        writeAll(head.bytes)
        if params.first(where: { $0.name == "REQUEST_METHOD" })?.value != "HEAD" && !response.status.forbidsBody {
            let body = response.body.chunks?.bytes ?? []
            body.withUnsafeBytes { writeAll($0) }
        }
        return 0
    }

    private static func stream(_ response: Response, produce: @Sendable (ResponseStream) -> Void) -> Int32 {
        let head = ByteBuffer(capacity: 256)
        CGIGateway.encodeHead(response, contentLength: nil, into: head) { _ in }
        writeAll(head.bytes)
        let sink = StdoutSink()
        produce(ResponseStream(sink: sink))
        sink.waitUntilFinished()
        return 0
    }

    static func writeAll(_ bytes: UnsafeRawBufferPointer, fd: Int32 = 1) {
        var off = 0
        while off < bytes.count {
            let n = write(fd, bytes.baseAddress! + off, bytes.count - off)
            if n <= 0 {
                if n < 0 && errno == EINTR { continue }
                return
            }
            off += n
        }
    }

    /// Writes a stream straight to standard output (a CGI process serves one request).
    final class StdoutSink: ResponseStreamSink {
        private let state = Mutex<Bool>(false)  // finished
        var isCancelled: Bool { state.withLock { $0 } }
        func write(_ chunks: ChunksTransfer) {
            state.withLock { done in
                guard !done else { return }
                chunks.chunks.bytes.withUnsafeBytes { CGIResponder.writeAll($0) }
            }
        }
        func finish() { state.withLock { $0 = true } }
        func waitUntilFinished() {
            while !isCancelled { usleep(1000) }
        }
    }
}
