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
