import Glibc
import NeedletailBytes
@_spi(Fuzzing) import NeedletailLoop
@_spi(Fuzzing) import NeedletailHTTP

/// Entry points for the fuzzer (`needletail-fuzz`, docs/SECURITY.md) and for the tests that
/// replay its corpus and the crashes it found. Not API: reached only with `@_spi(Fuzzing)`.
@_spi(Fuzzing) public enum ServerFuzzing {
    /// Splits `data` as a socket might: its first byte says how many bytes each read brings
    /// (0: all at once), the rest is the stream.
    static func reads(_ data: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> Bool) {
        guard let first = data.first else { return }
        let stream = UnsafeRawBufferPointer(rebasing: data[1...])
        let step = first == 0 ? max(stream.count, 1) : Int(first)
        var i = 0
        while i < stream.count {
            let end = min(i + step, stream.count)
            guard body(UnsafeRawBufferPointer(rebasing: stream[i..<end])) else { return }
            i = end
        }
    }

    /// The HTTP/1.1 request decoder (head parser, body decoder) on a byte stream, every request
    /// it yields read through `WebFuzzing.exercise`, as the native server does until it refuses
    /// one. Returns a count of what was
    /// seen (requests and their parts), so that nothing is optimized away.
    public static func http(_ data: UnsafeRawBufferPointer) -> Int {
        var decoder = HTTPRequestDecoder(limits: HTTPLimits())
        var pending: [UInt8] = []
        var offset = 0
        var requests = 0
        reads(data) { piece in
            pending.append(contentsOf: piece)
            while true {
                let (event, consumed) = pending.withUnsafeBytes { decoder.next(UnsafeRawBufferPointer(rebasing: $0[offset...])) }
                offset += consumed
                switch event {
                case .needMore:
                    pending.removeFirst(offset)
                    offset = 0
                    return true
                case .progress, .sendContinue:
                    continue
                case .request(let head, let body, let trailers):
                    let request = head.request(body: body, trailers: trailers, remote: .unknown)
                    requests &+= 1 &+ WebFuzzing.exercise(request)
                    if !head.keepAlive { return false }
                case .error:
                    return false
                }
            }
        }
        return requests
    }

    /// TLS: a handshake over a socket pair, then `data` (see `LoopFuzzing.tls`) through the
    /// server's TLS reads; what they decrypt goes through `http` as one read. Returns what was
    /// seen (bytes decrypted and requests).
    public static func tls(_ data: UnsafeRawBufferPointer) -> Int {
        var requests = 0
        let decrypted = LoopFuzzing.tls(data) { plain in
            var stream: [UInt8] = [0]
            stream.append(contentsOf: plain)
            requests = stream.withUnsafeBytes { http($0) }
        }
        return decrypted &+ requests
    }

    /// HTTP/2 frames through a real server in this process (one loop on loopback, h2c by prior
    /// knowledge, started on first use), every request it makes read through
    /// `WebFuzzing.exercise`; `/big` answers 100 KB, so that flow control is exercised. `data`
    /// is what a client sends after the connection preface, which is sent for it. The answer is
    /// read until the server closes (at most 2 s). Returns the bytes the server sent.
    public static func http2(_ data: UnsafeRawBufferPointer) -> Int {
        guard let server = http2Server, case .ipv4(_, let port) = server.addresses.first else { return 0 }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return 0 }
        defer { close(fd) }
        var tv = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = port.bigEndian
        sin.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        let connected = withUnsafePointer(to: &sin) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return 0 }
        var stream = ProtocolSelector.preface
        stream.append(contentsOf: data)
        var offset = 0
        while offset < stream.count {
            let n = stream[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { break }  // the server has closed: it refused what came so far
            offset += n
        }
        shutdown(fd, Int32(SHUT_WR))
        var received = 0
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            received += n
        }
        return received
    }

    /// The `http2` target's server, for the life of the process.
    static let http2Server: Server? = {
        struct Exercised: Responder {
            func respond(to request: Request) -> Response {
                if request.path == "/big" {
                    var body = Chunks()
                    body.append(unescaped: String(repeating: "h2 flow control ", count: 6400))
                    return Response(status: .ok, contentType: Response.textType, body: body)
                }
                return .text("\(WebFuzzing.exercise(request))")
            }
        }
        var config = ServerConfiguration()
        config.loops = 1
        config.http2PriorKnowledge = true
        guard let server = try? Server(responder: Exercised(), listeners: [.http(.ipv4(host: "127.0.0.1", port: 0))], configuration: config),
            (try? server.start()) != nil
        else { return nil }
        return server
    }()

    /// The FastCGI record reader, name-value pair decoder and CGI gateway on a byte stream from a
    /// "web server", with the responder's bookkeeping of requests and limits; every request
    /// completed is read through `WebFuzzing.exercise`. Returns a count of what was
    /// seen (requests and their parts), so that nothing is optimized away.
    public static func fastCGI(_ data: UnsafeRawBufferPointer) -> Int {
        let limits = FastCGILimits()
        var reader = FastCGIRecordReader()
        var small: [UInt8] = []
        var params: [UInt16: [UInt8]] = [:], bodies: [UInt16: [UInt8]] = [:]
        var paramsDone: Set<UInt16> = [], stdinDone: Set<UInt16> = []
        var requests = 0
        func dispatch(_ id: UInt16) {
            let p = params.removeValue(forKey: id) ?? []
            let body = bodies.removeValue(forKey: id) ?? []
            paramsDone.remove(id)
            stdinDone.remove(id)
            guard case .success(let pairs) = p.withUnsafeBytes({ FastCGI.decodePairRanges($0, maxLength: limits.maxParamsBytes) }),
                let request = try? CGIGateway.request(from: CGIParams(bytes: p, pairs: pairs), body: body)
            else { return }
            requests &+= 1 &+ WebFuzzing.exercise(request)
        }
        var pending: [UInt8] = []
        var ok = true
        reads(data) { piece in
            pending.append(contentsOf: piece)
            let consumed = pending.withUnsafeBytes { bytes in
                reader.read(bytes) { event in
                    switch event {
                    case .begin(let h):
                        ok = h.version == FastCGI.version
                        small.removeAll(keepingCapacity: true)
                    case .content(let h, let piece):
                        switch FastCGI.RecordType(rawValue: h.type) {
                        case .params:
                            guard params[h.requestID] != nil, !paramsDone.contains(h.requestID) else { break }
                            if params[h.requestID]!.count + piece.count > limits.maxParamsBytes {
                                ok = false
                            } else {
                                params[h.requestID]!.append(contentsOf: piece)
                            }
                        case .stdin:
                            guard bodies[h.requestID] != nil, !stdinDone.contains(h.requestID) else { break }
                            if bodies[h.requestID]!.count + piece.count > limits.maxBodyBytes {
                                bodies[h.requestID] = nil
                            } else {
                                bodies[h.requestID]!.append(contentsOf: piece)
                            }
                        case .data: break
                        default: small.append(contentsOf: piece)
                        }
                    case .complete(let h):
                        let id = h.requestID
                        switch FastCGI.RecordType(rawValue: h.type) {
                        case .beginRequest where id != 0:
                            guard small.count >= 8, params[id] == nil else { ok = false; break }
                            if UInt16(small[0]) << 8 | UInt16(small[1]) == FastCGI.roleResponder
                                && params.count < limits.maxRequestsPerConnection
                            {
                                params[id] = []
                                bodies[id] = []
                            }
                        case .abortRequest:
                            params[id] = nil
                            bodies[id] = nil
                        case .params where h.contentLength == 0:
                            guard params[id] != nil else { break }
                            paramsDone.insert(id)
                            if stdinDone.contains(id) { dispatch(id) }
                        case .stdin where h.contentLength == 0:
                            guard params[id] != nil else { break }
                            stdinDone.insert(id)
                            if paramsDone.contains(id) { dispatch(id) }
                        case .getValues where id == 0:
                            if case .failure = small.withUnsafeBytes({ FastCGI.decodePairs($0, maxLength: 1024) }) { ok = false }
                        default: break
                        }
                    }
                    return ok
                }
            }
            // The reader leaves a partial header for the next read, as a connection does.
            pending.removeFirst(consumed)
            return ok
        }
        return requests
    }
}
