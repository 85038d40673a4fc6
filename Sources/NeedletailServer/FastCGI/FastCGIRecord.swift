import NeedletailBytes

/// FastCGI 1.0 record types, roles and statuses, and the record and name-value encodings.
/// The format is in `/usr/share/doc/libfcgi-dev/fcgi-spec.html`; docs/FASTCGI.md says what we
/// do with each record.
enum FastCGI {
    static let version: UInt8 = 1
    static let headerLength = 8
    static let maxContent = 65535

    enum RecordType: UInt8 {
        case beginRequest = 1, abortRequest, endRequest, params, stdin, stdout, stderr, data, getValues, getValuesResult, unknownType
    }

    static let roleResponder: UInt16 = 1
    static let flagKeepConn: UInt8 = 1

    enum ProtocolStatus: UInt8 {
        case requestComplete = 0, cantMultiplex, overloaded, unknownRole
    }

    /// An 8-byte record header.
    struct Header: Equatable {
        var version: UInt8
        var type: UInt8
        var requestID: UInt16
        var contentLength: Int
        var paddingLength: Int

        init(_ b: UnsafeRawBufferPointer) {
            version = b[0]
            type = b[1]
            requestID = UInt16(b[2]) << 8 | UInt16(b[3])
            contentLength = Int(b[4]) << 8 | Int(b[5])
            paddingLength = Int(b[6])
        }
    }

    /// Appends a record header for `length` content bytes, padded to a multiple of 8.
    /// Returns the padding length the caller must append after the content.
    @discardableResult
    static func appendHeader(_ type: RecordType, id: UInt16, length: Int, to out: ByteBuffer) -> Int {
        let padding = (8 - length % 8) % 8
        out.append(version)
        out.append(type.rawValue)
        out.append(UInt8(id >> 8))
        out.append(UInt8(id & 0xff))
        out.append(UInt8(length >> 8))
        out.append(UInt8(length & 0xff))
        out.append(UInt8(padding))
        out.append(0)
        return padding
    }

    static let zeros = [UInt8](repeating: 0, count: 8)

    /// Appends `n` padding bytes.
    static func appendPadding(_ n: Int, to out: ByteBuffer) {
        guard n > 0 else { return }
        zeros.withUnsafeBytes { out.append(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
    }

    /// Appends a whole record with `content`.
    static func appendRecord(_ type: RecordType, id: UInt16, content: UnsafeRawBufferPointer, to out: ByteBuffer) {
        let padding = appendHeader(type, id: id, length: content.count, to: out)
        out.append(content)
        appendPadding(padding, to: out)
    }

    /// Appends an END_REQUEST record.
    static func appendEndRequest(id: UInt16, appStatus: UInt32, status: ProtocolStatus, to out: ByteBuffer) {
        let body: [UInt8] = [
            UInt8(appStatus >> 24), UInt8((appStatus >> 16) & 0xff), UInt8((appStatus >> 8) & 0xff),
            UInt8(appStatus & 0xff), status.rawValue, 0, 0, 0,
        ]
        body.withUnsafeBytes { appendRecord(.endRequest, id: id, content: $0, to: out) }
    }

    /// Errors in a name-value pair stream.
    enum PairError: Error, Equatable {
        case truncated
        case tooLong
    }

    /// Decodes name-value pairs (1-byte lengths below 128, else 4 bytes big-endian with the top
    /// bit set; a 4-byte form of a small length is accepted) into the byte ranges of each name
    /// and value. Each length is capped at `maxLength` before anything is read or allocated.
    static func decodePairRanges(
        _ bytes: UnsafeRawBufferPointer, maxLength: Int
    ) -> Result<[(name: Range<Int>, value: Range<Int>)], PairError> {
        var pairs: [(name: Range<Int>, value: Range<Int>)] = []
        pairs.reserveCapacity(32)
        var i = 0
        func length() -> Int? {
            guard i < bytes.count else { return nil }
            if bytes[i] < 0x80 {
                i += 1
                return Int(bytes[i - 1])
            }
            guard i + 4 <= bytes.count else { return nil }
            let n = Int(bytes[i] & 0x7f) << 24 | Int(bytes[i + 1]) << 16 | Int(bytes[i + 2]) << 8 | Int(bytes[i + 3])
            i += 4
            return n
        }
        while i < bytes.count {
            guard let nameLength = length(), let valueLength = length() else { return .failure(.truncated) }
            guard nameLength <= maxLength, valueLength <= maxLength else { return .failure(.tooLong) }
            guard nameLength + valueLength <= bytes.count - i else { return .failure(.truncated) }
            let name = i..<(i + nameLength)
            i += nameLength
            pairs.append((name, i..<(i + valueLength)))
            i += valueLength
        }
        return .success(pairs)
    }

    /// Decodes name-value pairs as strings (management records).
    static func decodePairs(_ bytes: UnsafeRawBufferPointer, maxLength: Int) -> Result<[(name: String, value: String)], PairError> {
        decodePairRanges(bytes, maxLength: maxLength).map { ranges in
            ranges.map { (String(decoding: bytes[$0.name], as: UTF8.self), String(decoding: bytes[$0.value], as: UTF8.self)) }
        }
    }

    /// Encodes one name-value pair.
    static func appendPair(name: String, value: String, to out: inout [UInt8]) {
        for n in [name.utf8.count, value.utf8.count] {
            if n < 128 {
                out.append(UInt8(n))
            } else {
                out += [UInt8(0x80 | (n >> 24)), UInt8((n >> 16) & 0xff), UInt8((n >> 8) & 0xff), UInt8(n & 0xff)]
            }
        }
        out += name.utf8
        out += value.utf8
    }
}

/// Splits a FastCGI byte stream into records: each record's header, its content in pieces as
/// they arrive, its end; padding is skipped. Pure (no sockets), so that the connection and the
/// fuzzer drive the same code.
struct FastCGIRecordReader {
    enum Event {
        /// A header has arrived (content and padding follow).
        case begin(FastCGI.Header)
        /// Some of the record's content.
        case content(FastCGI.Header, UnsafeRawBufferPointer)
        /// All of the record's content has arrived.
        case complete(FastCGI.Header)
    }

    private var header: FastCGI.Header?
    private var contentLeft = 0
    private var paddingLeft = 0

    /// Reads records from `bytes` (which start at the first unconsumed byte), handing each event
    /// to `handle`, until the bytes run out or `handle` returns false. Returns the bytes consumed
    /// (a partial header is left for the next call).
    mutating func read(_ bytes: UnsafeRawBufferPointer, _ handle: (Event) -> Bool) -> Int {
        var i = 0
        while i < bytes.count {
            guard let h = header else {
                guard bytes.count - i >= FastCGI.headerLength else { return i }
                let h = FastCGI.Header(UnsafeRawBufferPointer(rebasing: bytes[i..<(i + FastCGI.headerLength)]))
                i += FastCGI.headerLength
                header = h
                contentLeft = h.contentLength
                paddingLeft = h.paddingLength
                guard handle(.begin(h)) else { return i }
                if contentLeft == 0 {
                    if paddingLeft == 0 { header = nil }
                    guard handle(.complete(h)) else { return i }
                }
                continue
            }
            if contentLeft > 0 {
                let take = min(contentLeft, bytes.count - i)
                let piece = UnsafeRawBufferPointer(rebasing: bytes[i..<(i + take)])
                i += take
                contentLeft -= take
                if contentLeft == 0 && paddingLeft == 0 { header = nil }
                guard handle(.content(h, piece)) else { return i }
                if contentLeft == 0 {
                    guard handle(.complete(h)) else { return i }
                }
            } else {
                let take = min(paddingLeft, bytes.count - i)
                i += take
                paddingLeft -= take
                if paddingLeft == 0 { header = nil }
            }
        }
        return i
    }
}
