/// Collects a request body as it arrives: a known length, or chunked (RFC 9112 7.1) with
/// extensions skipped and trailer fields kept. Consumes bytes as they come, so the read buffer
/// never has to hold a whole body.
struct HTTPBodyDecoder {
    enum State: Equatable {
        case length(remaining: Int)
        case chunkSize(digits: Int, value: Int)
        case chunkExtension
        case chunkSizeLF
        case chunkData(remaining: Int)
        case chunkDataCR
        case chunkDataLF
        case trailerLine
        case trailerLF
        case done
    }

    private(set) var state: State
    private(set) var body: [UInt8] = []
    /// Trailer lines, `name: value\r\n` each.
    private(set) var trailers: [UInt8] = []
    private var lineLength = 0
    private var trailerLineStart = 0
    private var trailerCount = 0
    private let limits: HTTPLimits

    init(framing: BodyFraming, limits: HTTPLimits) {
        self.limits = limits
        switch framing {
        case .none: state = .done
        case .length(let n):
            state = .length(remaining: n)
            body.reserveCapacity(n)
        case .chunked: state = .chunkSize(digits: 0, value: 0)
        }
    }

    var isDone: Bool { state == .done }

    /// Takes what it can from `buf`; returns the number of bytes consumed.
    mutating func feed(_ buf: UnsafeRawBufferPointer) -> Result<Int, HTTPError> {
        var i = 0
        let n = buf.count
        while i < n {
            switch state {
            case .done:
                return .success(i)
            case .length(let remaining):
                let take = min(remaining, n - i)
                body.append(contentsOf: UnsafeRawBufferPointer(rebasing: buf[i..<(i + take)]))
                i += take
                state = remaining == take ? .done : .length(remaining: remaining - take)
            case .chunkSize(let digits, let value):
                let b = buf[i]
                if let h = hex(b) {
                    // Leading zeros are allowed (1*HEXDIG); a value past the body limit is 413
                    // below, long before it could overflow.
                    guard value >> 56 == 0 else { return .failure(.bad("chunk size too large")) }
                    state = .chunkSize(digits: digits + 1, value: value << 4 | Int(h))
                    lineLength += 1
                    if lineLength > limits.maxChunkLine { return .failure(.bad("chunk size line too long")) }
                    i += 1
                } else if digits == 0 {
                    return .failure(.bad("invalid chunk size"))
                } else if b == 13 {
                    state = .chunkSizeLF
                    i += 1
                } else if b == UInt8(ascii: ";") || b == 32 || b == 9 {
                    state = .chunkExtension
                    lineLength += 1
                    i += 1
                } else {
                    return .failure(.bad("invalid chunk size"))
                }
                if case .chunkSize(_, let v) = state, body.count + v > limits.maxBodyBytes {
                    return .failure(HTTPError(.contentTooLarge, "request body larger than \(limits.maxBodyBytes) bytes"))
                }
                if case .chunkSizeLF = state { pendingSize = value }
                if case .chunkExtension = state { pendingSize = value }
            case .chunkExtension:
                let b = buf[i]
                if b == 13 {
                    state = .chunkSizeLF
                } else if b == 10 || b == 0 {
                    return .failure(.bad("bare LF or NUL in chunk extension"))
                } else {
                    lineLength += 1
                    if lineLength > limits.maxChunkLine { return .failure(.bad("chunk extension too long")) }
                }
                i += 1
            case .chunkSizeLF:
                guard buf[i] == 10 else { return .failure(.bad("chunk size line not ended by CRLF")) }
                i += 1
                lineLength = 0
                if pendingSize > limits.maxBodyBytes - body.count {
                    return .failure(HTTPError(.contentTooLarge, "request body larger than \(limits.maxBodyBytes) bytes"))
                }
                state = pendingSize == 0 ? .trailerLine : .chunkData(remaining: pendingSize)
                trailerLineStart = trailers.count
            case .chunkData(let remaining):
                let take = min(remaining, n - i)
                body.append(contentsOf: UnsafeRawBufferPointer(rebasing: buf[i..<(i + take)]))
                i += take
                state = remaining == take ? .chunkDataCR : .chunkData(remaining: remaining - take)
            case .chunkDataCR:
                guard buf[i] == 13 else { return .failure(.bad("chunk data not followed by CRLF")) }
                state = .chunkDataLF
                i += 1
            case .chunkDataLF:
                guard buf[i] == 10 else { return .failure(.bad("chunk data not followed by CRLF")) }
                state = .chunkSize(digits: 0, value: 0)
                i += 1
            case .trailerLine:
                let b = buf[i]
                if b == 13 {
                    state = .trailerLF
                } else if b == 10 || b == 0 {
                    return .failure(.bad("bare LF or NUL in trailer section"))
                } else {
                    if trailers.count - trailerLineStart == 0 && (b == 32 || b == 9) {
                        return .failure(.bad("obsolete line folding in trailer section"))
                    }
                    trailers.append(b)
                    if trailers.count > limits.maxHeaderBytes {
                        return .failure(HTTPError(.requestHeaderFieldsTooLarge, "trailer section too large"))
                    }
                }
                i += 1
            case .trailerLF:
                guard buf[i] == 10 else { return .failure(.bad("bare CR in trailer section")) }
                i += 1
                if trailers.count == trailerLineStart {
                    state = .done  // empty line: end of the message
                } else {
                    if let e = validateTrailerLine(trailerLineStart..<trailers.count) { return .failure(e) }
                    trailerCount += 1
                    if trailerCount > limits.maxHeaderFields {
                        return .failure(HTTPError(.requestHeaderFieldsTooLarge, "too many trailer fields"))
                    }
                    trailers.append(13)
                    trailers.append(10)
                    trailerLineStart = trailers.count
                    state = .trailerLine
                }
            }
        }
        return .success(i)
    }

    private var pendingSize = 0

    private func validateTrailerLine(_ r: Range<Int>) -> HTTPError? {
        var i = r.lowerBound
        while i < r.upperBound && trailers[i] != UInt8(ascii: ":") {
            guard HTTPHeadParser.isTokenChar(trailers[i]) else { return .bad("invalid trailer field name") }
            i += 1
        }
        if i == r.lowerBound || i == r.upperBound { return .bad("trailer field without a name or colon") }
        for j in (i + 1)..<r.upperBound {
            let b = trailers[j]
            if (b < 32 && b != 9) || b == 127 { return .bad("control character in trailer field") }
        }
        return nil
    }

    @inline(__always)
    private func hex(_ b: UInt8) -> UInt8? {
        switch b {
        case 48...57: return b - 48
        case 65...70: return b - 55
        case 97...102: return b - 87
        default: return nil
        }
    }

    /// Hands over the body (the decoder is spent afterwards).
    mutating func takeBody() -> [UInt8] {
        let b = body
        body = []
        return b
    }
}
