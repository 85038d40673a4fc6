/// Request header fields, kept as the lines they arrived in: `Name: value\r\n` each.
///
/// Nothing is split into a dictionary unless asked: a lookup scans the lines, which for the
/// dozen fields of a typical request is faster than building a table would be. Repeated names
/// are kept; names compare case-insensitively. The codecs guarantee the lines are well formed.
public struct HeaderFields: Sendable, Sequence {
    @usableFromInline let storage: [UInt8]
    @usableFromInline let range: Range<Int>

    /// Header lines in `storage[range]`, each `name:` OWS value OWS CRLF, already validated.
    public init(lines storage: [UInt8], range: Range<Int>) {
        self.storage = storage
        self.range = range
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
        range = 0..<bytes.count
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
        let end = range.upperBound
        guard position < end else { return nil }
        var i = position
        while i < end && storage[i] != UInt8(ascii: ":") { i += 1 }
        let nameRange = position..<i
        i += 1
        while i < end && (storage[i] == 32 || storage[i] == 9) { i += 1 }
        let valueStart = i
        while i < end && storage[i] != 13 { i += 1 }
        var valueEnd = i
        while valueEnd > valueStart && (storage[valueEnd - 1] == 32 || storage[valueEnd - 1] == 9) { valueEnd -= 1 }
        position = Swift.min(i + 2, end)
        return Field(name: nameRange, value: valueStart..<valueEnd)
    }

    @usableFromInline
    func string(_ r: Range<Int>) -> String {
        storage.withUnsafeBufferPointer { String(decoding: UnsafeBufferPointer(rebasing: $0[r]), as: UTF8.self) }
    }

    @usableFromInline
    func nameMatches(_ r: Range<Int>, _ name: String) -> Bool {
        var n = name
        return n.withUTF8 { nb in
            guard nb.count == r.count else { return false }
            var j = 0
            for i in r {
                if asciiLower(storage[i]) != asciiLower(nb[j]) { return false }
                j += 1
            }
            return true
        }
    }

    /// The value of the first field called `name`, or `nil`.
    public subscript(name: String) -> String? {
        var p = range.lowerBound
        while let f = field(at: &p) {
            if nameMatches(f.name, name) { return string(f.value) }
        }
        return nil
    }

    /// The first non-nil result of `body` over the values of fields called `name`, read in
    /// place (no string made).
    public func firstValue<T>(_ name: String, _ body: (ArraySlice<UInt8>) -> T?) -> T? {
        var p = range.lowerBound
        while let f = field(at: &p) {
            if nameMatches(f.name, name), let r = body(storage[f.value]) { return r }
        }
        return nil
    }

    /// Every value of fields called `name`, in order.
    public func values(_ name: String) -> [String] {
        var out: [String] = []
        var p = range.lowerBound
        while let f = field(at: &p) {
            if nameMatches(f.name, name) { out.append(string(f.value)) }
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
