import NeedletailBytes
import Glibc

/// Request header fields, kept as the lines they arrived in: `Name: value\r\n` each.
///
/// Nothing is split into a dictionary unless asked: a lookup scans the lines, which for the
/// dozen fields of a typical request is faster than building a table would be. Repeated names
/// are kept; names compare case-insensitively. The codecs guarantee the lines are well formed.
public struct HeaderFields: Sendable, Sequence {
    @usableFromInline let storage: [UInt8]
    /// The lines' bounds in `storage`, as two 32-bit offsets: with the three noted fields the
    /// value stays four words, passed in registers (at five, every copy of a request's
    /// fields went through outlined value witnesses: ~400 instructions per board page).
    @usableFromInline let lower: UInt32, upper: UInt32
    @inlinable var range: Range<Int> { Int(lower)..<Int(upper) }
    /// Where the first Referer, User-Agent and Accept-Encoding values are, when the codec noted
    /// them while parsing (the access log reads the first two for every request, compression
    /// the third for every answer: a scan of the lines for an absent field was ~440
    /// instructions per board page; docs/PERFORMANCE.md).
    @usableFromInline package let noted: NotedFields

    /// Header lines in `storage[range]`, each `name:` OWS value OWS CRLF, already validated.
    public init(lines storage: [UInt8], range: Range<Int>) {
        self.init(lines: storage, range: range, noted: .unknown)
    }

    /// Header lines whose Referer, User-Agent and Accept-Encoding values the codec has already found.
    package init(lines storage: [UInt8], range: Range<Int>, noted: NotedFields) {
        self.storage = storage
        lower = UInt32(truncatingIfNeeded: range.lowerBound)
        upper = UInt32(truncatingIfNeeded: range.upperBound)
        self.noted = noted
    }

    /// The places of the first Referer, User-Agent and Accept-Encoding values in the storage, each packed as
    /// `offset << 16 | (length + 1)`: 0 when the field is absent, `unknown` when not noted
    /// (a head over 65,534 bytes, fields from FastCGI or CGI).
    @usableFromInline
    package struct NotedFields: Sendable {
        @usableFromInline package var referer: UInt32
        @usableFromInline package var agent: UInt32
        @usableFromInline package var acceptEncoding: UInt32
        @inlinable package static var unknown: NotedFields { NotedFields(referer: .max, agent: .max, acceptEncoding: .max) }
        @inlinable package static var absent: NotedFields { NotedFields(referer: 0, agent: 0, acceptEncoding: 0) }
        @inlinable package init(referer: UInt32, agent: UInt32, acceptEncoding: UInt32) {
            self.referer = referer
            self.agent = agent
            self.acceptEncoding = acceptEncoding
        }
        /// The value range a packed place stands for (nil: the field is absent).
        @inlinable @inline(__always)
        package static func range(_ packed: UInt32) -> Range<Int>? {
            guard packed != 0 else { return nil }
            let start = Int(packed >> 16)
            return start..<start + Int(packed & 0xFFFF) - 1
        }
        /// `range` packed, or `unknown` when it does not fit.
        @inlinable
        package static func pack(_ range: Range<Int>) -> UInt32 {
            guard range.upperBound < 0xFFFF else { return .max }
            return UInt32(truncatingIfNeeded: range.lowerBound << 16 | (range.count + 1))
        }
    }

    /// Builds fields from pairs (FastCGI, CGI, tests). Names and values must not contain CR or LF.
    public init(_ pairs: [(String, String)]) {
        var bytes: [UInt8] = []
        for (name, value) in pairs {
            bytes.append(contentsOf: name.utf8.filter { $0 != 13 && $0 != 10 && $0 != UInt8(ascii: ":") })
            bytes.append(contentsOf: ": ".utf8)
            bytes.append(contentsOf: value.utf8.filter { $0 != 13 && $0 != 10 })
            bytes.append(contentsOf: "\r\n".utf8)
        }
        storage = bytes
        lower = 0
        upper = UInt32(truncatingIfNeeded: bytes.count)
        noted = .unknown
    }

    /// No fields.
    public static let empty = HeaderFields(lines: [], range: 0..<0)

    /// One field: byte ranges of its name and value within the storage.
    public struct Field {
        public let name: Range<Int>
        public let value: Range<Int>
    }

    public struct Iterator: IteratorProtocol {
        let fields: HeaderFields
        var position: Int
        public mutating func next() -> (name: String, value: String)? {
            guard let f = fields.field(at: &position) else { return nil }
            return (fields.string(f.name), fields.string(f.value))
        }
    }

    public func makeIterator() -> Iterator { Iterator(fields: self, position: range.lowerBound) }

    /// Reads the field starting at `position` and moves `position` past it.
    @usableFromInline
    func field(at position: inout Int) -> Field? {
        guard position < range.upperBound else { return nil }
        return storage.withUnsafeBufferPointer { buf in Self.field(buf.baseAddress!, &position, range.upperBound) }
    }

    /// The field at `position` in `base[..<end]` (`position < end`): `memchr` finds the colon
    /// and the CR, and no byte is bounds-checked (a lookup scans every line before its field).
    @usableFromInline
    static func field(_ base: UnsafePointer<UInt8>, _ position: inout Int, _ end: Int) -> Field {
        func find(_ byte: UInt8, from i: Int) -> Int {
            guard i < end, let hit = memchr(base + i, Int32(byte), end - i) else { return end }
            return UnsafeRawPointer(hit) - UnsafeRawPointer(base)
        }
        var i = find(UInt8(ascii: ":"), from: position)
        let nameRange = position..<i
        i = Swift.min(i + 1, end)
        while i < end && (base[i] == 32 || base[i] == 9) { i += 1 }
        let valueStart = i
        i = find(13, from: i)
        var valueEnd = i
        while valueEnd > valueStart && (base[valueEnd - 1] == 32 || base[valueEnd - 1] == 9) { valueEnd -= 1 }
        position = Swift.min(i + 2, end)
        return Field(name: nameRange, value: valueStart..<valueEnd)
    }

    /// Calls `body` with the value range of each field called `name`, in order, until it
    /// returns true.
    @usableFromInline
    func scan(_ name: String, _ body: (Range<Int>) -> Bool) {
        name.withUTF8Bytes { key in
            // A name holds no colon, so a key with one matches nothing.
            guard !key.isEmpty, memchr(key.baseAddress!, Int32(UInt8(ascii: ":")), key.count) == nil else { return }
            storage.withUnsafeBufferPointer { buf in
                guard let base = buf.baseAddress else { return }
                let end = range.upperBound
                var p = range.lowerBound
                while p < end {
                    // A line's name is everything before its first colon: the key matches when
                    // the line starts with it and a colon follows. Only a matching line is split
                    // into name and value; the others cost one memchr to their end.
                    let nameEnd = p + key.count
                    if nameEnd < end && base[nameEnd] == UInt8(ascii: ":") && Self.sameName(base + p, key) {
                        if body(Self.field(base, &p, end).value) { return }
                    } else if let cr = memchr(base + p, 13, end - p) {
                        p = Swift.min(UnsafeRawPointer(cr) - UnsafeRawPointer(base) + 2, end)
                    } else {
                        p = end
                    }
                }
            }
        }
    }

    /// Whether the `key.count` bytes at `bytes` are `key`, ASCII case ignored.
    @usableFromInline
    static func sameName(_ bytes: UnsafePointer<UInt8>, _ key: UnsafeBufferPointer<UInt8>) -> Bool {
        for j in 0..<key.count where asciiLower(bytes[j]) != asciiLower(key[j]) { return false }
        return true
    }

    @usableFromInline
    func string(_ r: Range<Int>) -> String {
        storage.withUnsafeBufferPointer { String(decoding: UnsafeBufferPointer(rebasing: $0[r]), as: UTF8.self) }
    }

    /// The value of the first field called `name`, or `nil`.
    public subscript(name: String) -> String? {
        var found: Range<Int>?
        scan(name) {
            found = $0; return true
        }
        return found.map(string)
    }

    /// The first non-nil result of `body` over the values of fields called `name`, read in
    /// place (no String is made unless `body` makes one).
    public func firstValue<T>(_ name: String, _ body: (ArraySlice<UInt8>) -> T?) -> T? {
        var result: T?
        scan(name) { r in
            result = body(storage[r])
            return result != nil
        }
        return result
    }

    /// The bytes of the first values of fields `a` and `b` (names in lower case), found in one
    /// pass and read in place: nil for a name no field has.
    @usableFromInline
    package func withFirstValues<R>(
        _ a: StaticString, _ b: StaticString, _ body: (UnsafeRawBufferPointer?, UnsafeRawBufferPointer?) -> R
    ) -> R {
        storage.withUnsafeBufferPointer { buf in
            guard let base = buf.baseAddress else { return body(nil, nil) }
            let keyA = UnsafeBufferPointer(start: a.utf8Start, count: a.utf8CodeUnitCount)
            let keyB = UnsafeBufferPointer(start: b.utf8Start, count: b.utf8CodeUnitCount)
            var found: (Range<Int>?, Range<Int>?) = (nil, nil)
            var p = range.lowerBound
            while p < range.upperBound && (found.0 == nil || found.1 == nil) {
                let f = Self.field(base, &p, range.upperBound)
                let name = base + f.name.lowerBound
                if found.0 == nil && f.name.count == keyA.count && Self.sameName(name, keyA) {
                    found.0 = f.value
                } else if found.1 == nil && f.name.count == keyB.count && Self.sameName(name, keyB) {
                    found.1 = f.value
                }
            }
            let raw = UnsafeRawBufferPointer(buf)
            return body(found.0.map { UnsafeRawBufferPointer(rebasing: raw[$0]) }, found.1.map { UnsafeRawBufferPointer(rebasing: raw[$0]) })
        }
    }

    /// The first Referer and User-Agent values (nil: absent), read where the codec noted them,
    /// or found in one pass when it did not.
    @inlinable
    package func withRefererAndAgent<R>(_ body: (UnsafeRawBufferPointer?, UnsafeRawBufferPointer?) -> R) -> R {
        guard noted.referer != .max, noted.agent != .max else { return withFirstValues("referer", "user-agent", body) }
        return storage.withUnsafeBytes { raw in
            @inline(__always) func unpack(_ p: UInt32) -> UnsafeRawBufferPointer? {
                NotedFields.range(p).map { UnsafeRawBufferPointer(rebasing: raw[$0]) }
            }
            return body(unpack(noted.referer), unpack(noted.agent))
        }
    }

    /// `body` of the first Accept-Encoding value (nil when there is none), read where the codec
    /// noted it, or found by a scan when it did not.
    @inlinable
    package func firstAcceptEncoding<T>(_ body: (ArraySlice<UInt8>) -> T?) -> T? {
        let packed = noted.acceptEncoding
        if packed == .max { return firstValue("accept-encoding", body) }
        return NotedFields.range(packed).flatMap { body(storage[$0]) }
    }

    /// Every value of fields called `name`, in order.
    public func values(_ name: String) -> [String] {
        var out: [String] = []
        scan(name) {
            out.append(string($0)); return false
        }
        return out
    }

    /// The values of every field called `name` joined with ", " (RFC 9110 5.3), or `nil`.
    public func combined(_ name: String) -> String? {
        let v = values(name)
        return v.isEmpty ? nil : v.joined(separator: ", ")
    }

    /// Number of fields.
    public var count: Int {
        var n = 0
        var p = range.lowerBound
        while field(at: &p) != nil { n += 1 }
        return n
    }
}

@inline(__always) @usableFromInline
func asciiLower(_ b: UInt8) -> UInt8 {
    (b >= 65 && b <= 90) ? b | 0x20 : b
}
