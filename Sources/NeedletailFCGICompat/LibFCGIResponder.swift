import CFCGI
import Glibc
import Logging
import NeedletailBytes
import NeedletailLoop
import NeedletailPOSIX
import NeedletailServer
import NeedletailHTTP
import Synchronization

/// The conventional FastCGI responder, on Debian's libfcgi: a fixed pool of threads, each
/// blocking in `FCGX_Accept_r`, reading the request, calling the app, writing, `FCGX_Finish_r`.
///
/// It is the baseline the harness compares the native codec with, and a fallback for anyone who
/// distrusts a new codec. Its limits are libfcgi's: all I/O blocks; one request per connection at
/// a time (a second BEGIN_REQUEST gets CANT_MPX_CONN); a thread is held for as long as the web
/// server keeps a connection open, so behind nginx with `fastcgi_keep_conn on` and more pooled
/// connections than threads, requests queue behind idle connections (the keep-alive starvation
/// that php-fpm shows too); a streamed response holds its thread until it finishes.
public enum LibFCGIResponder {
    /// Serves until SIGTERM or SIGINT.
    public static func run(
        responder: any Responder, listener: Listener, threads: Int, maxBodyBytes: Int,
        socketMode: mode_t?, logger: Logger
    ) throws {
        guard FCGX_Init() == 0 else { throw SocketError("FCGX_Init failed") }
        let socket: ListeningSocket
        var unlinkAtExit = false
        switch listener {
        case .fastCGIInherited(let fd):
            socket = try ListeningSocket.adopt(fd: fd)
        case .fastCGI(let address):
            var options = ListeningSocket.Options()
            options.unixMode = socketMode
            socket = try ListeningSocket.bind(address, options: options)
            if case .unix = address { unlinkAtExit = true }
        case .http, .https:
            throw SocketError("the libfcgi responder speaks FastCGI only")
        }
        // libfcgi expects a blocking socket.
        let flags = fcntl(socket.fd, F_GETFL)
        _ = fcntl(socket.fd, F_SETFL, flags & ~O_NONBLOCK)

        LoopGroup.prepareSignals()
        logger.info("needletail-demo (libfcgi responder, \(threads) threads) listening for FastCGI on \(socket.address)")
        let fd = socket.fd
        let running = Atomic<Int>(threads)
        var tids: [pthread_t] = []
        for _ in 0..<threads {
            do {
                tids.append(
                    try POSIXThread.spawn(name: "libfcgi worker") {
                        serve(fd: fd, responder: responder, maxBodyBytes: maxBodyBytes, logger: logger)
                        running.subtract(1, ordering: .relaxed)
                    })
            } catch {
                logger.error("\(error); serving with \(tids.count) threads")
                running.subtract(1, ordering: .relaxed)
            }
        }
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        var sig: Int32 = 0
        sigwait(&set, &sig)
        logger.info("received \(sig == SIGTERM ? "SIGTERM" : "SIGINT"); stopping")
        FCGX_ShutdownPending()
        shutdown(fd, Int32(SHUT_RDWR))  // wakes threads blocked in accept
        var waited = 0
        while running.load(ordering: .relaxed) > 0 && waited < 100 {
            usleep(100_000)
            waited += 1
        }
        socket.close(unlinking: unlinkAtExit)
        logger.info("stopped")
    }

    private static func serve(fd: Int32, responder: any Responder, maxBodyBytes: Int, logger: Logger) {
        var request = FCGX_Request()
        guard FCGX_InitRequest(&request, fd, 0) == 0 else { return }
        while FCGX_Accept_r(&request) >= 0 {
            handle(&request, responder: responder, maxBodyBytes: maxBodyBytes, logger: logger)
            FCGX_Finish_r(&request)
        }
        FCGX_Free(&request, 1)
    }

    private static func handle(_ request: inout FCGX_Request, responder: any Responder, maxBodyBytes: Int, logger: Logger) {
        var params: [(name: String, value: String)] = []
        var e = request.envp
        while let entry = e?.pointee {
            let s = String(cString: entry)
            if let eq = s.firstIndex(of: "=") { params.append((String(s[..<eq]), String(s[s.index(after: eq)...]))) }
            e = e! + 1
        }
        var body: [UInt8] = []
        var tooLarge = false
        var buffer = [CChar](repeating: 0, count: 16 * 1024)
        while true {
            let n = FCGX_GetStr(&buffer, Int32(buffer.count), request.in)
            if n <= 0 { break }
            if body.count + Int(n) > maxBodyBytes { tooLarge = true; continue }
            buffer.withUnsafeBytes { body.append(contentsOf: $0[0..<Int(n)]) }
        }
        let out = request.out
        var response: Response
        var isHead = false
        if tooLarge {
            response = .text("413 Content Too Large: request body larger than \(maxBodyBytes) bytes\n", status: .contentTooLarge)
        } else {
            do {
                let r = try CGIGateway.request(from: params, body: body)
                isHead = r.method == .head
                let answer = responder.respond(to: r).waited()  // an async handler: waited for on this worker
                if let failure = answer.failure { logger.error("\(failure)") }
                response = answer.response
                _ = response.loadFileBody()
            } catch {
                response = .text("400 Bad Request: \(error)\n", status: .badRequest)
            }
        }
        let head = ByteBuffer(capacity: 256)
        CGIGateway.encodeHead(response, contentLength: response.body.count, into: head) { name in
            logger.warning("dropped response header field with CR, LF or NUL, or an invalid name", metadata: ["field": "\(name)"])
        }
        put(head.bytes, out)
        if let produce = response.body.stream, !isHead {
            let sink = BlockingSink(out: out)
            produce(ResponseStream(sink: sink))
            sink.waitUntilFinished()
        } else if !isHead && !response.status.forbidsBody {
            (response.body.chunks?.bytes ?? []).withUnsafeBytes { put($0, out) }
        }
    }

    static func put(_ bytes: UnsafeRawBufferPointer, _ out: UnsafeMutablePointer<FCGX_Stream>?) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        _ = FCGX_PutStr(base.assumingMemoryBound(to: CChar.self), Int32(bytes.count), out)
    }

    /// A stream written from the producer's threads straight into libfcgi, while the request's
    /// thread waits for `finish`. `@unchecked Sendable`: the libfcgi stream is used under the lock.
    final class BlockingSink: ResponseStreamSink, @unchecked Sendable {
        private let out: UnsafeMutablePointer<FCGX_Stream>?
        private let done = Mutex<Bool>(false)
        init(out: UnsafeMutablePointer<FCGX_Stream>?) { self.out = out }
        var isCancelled: Bool { done.withLock { $0 } }
        func write(_ chunks: ChunksTransfer) {
            done.withLock { finished in
                guard !finished else { return }
                chunks.chunks.bytes.withUnsafeBytes { LibFCGIResponder.put($0, out) }
                FCGX_FFlush(out)
            }
        }
        func finish() { done.withLock { $0 = true } }
        func waitUntilFinished() { while !isCancelled { usleep(1000) } }
    }
}
