import NeedletailBytes
/// `name=value&…` pairs from a query string or an `application/x-www-form-urlencoded` body,
/// decoded on lookup. `+` is a space; names are matched exactly after decoding.
public struct QueryParameters: Sendable {
    @usableFromInline let storage: [UInt8]
    @usableFromInline let range: Range<Int>

    public init(storage: [UInt8], range: Range<Int>) {
        self.storage = storage
        self.range = range
    }

    /// Parameters from text (tests, CGI).
    public init(_ text: String) {
        storage = Array(text.utf8)
        range = 0..<storage.count
    }

    public static let empty = QueryParameters(storage: [], range: 0..<0)

    /// Calls `body` with each raw (still encoded) name and value until it returns `false`.
    @inlinable
    func forEachPair(_ body: (UnsafeBufferPointer<UInt8>, UnsafeBufferPointer<UInt8>) -> Bool) {
        storage.withUnsafeBufferPointer { all in
            let buf = UnsafeBufferPointer(rebasing: all[range])
            var start = 0
            while start <= buf.count {
                var end = start
                while end < buf.count && buf[end] != UInt8(ascii: "&") && buf[end] != UInt8(ascii: ";") { end += 1 }
                if end > start {
                    var eq = start
                    while eq < end && buf[eq] != UInt8(ascii: "=") { eq += 1 }
                    let name = UnsafeBufferPointer(rebasing: buf[start..<eq])
                    let value =
                        eq < end ? UnsafeBufferPointer(rebasing: buf[(eq + 1)..<end]) : UnsafeBufferPointer(rebasing: buf[end..<end])
                    if !body(name, value) { return }
                }
                start = end + 1
            }
        }
    }

    @usableFromInline
    static func rawNameMatches(_ raw: UnsafeBufferPointer<UInt8>, _ name: UnsafeBufferPointer<UInt8>) -> Bool {
        // Fast path: an unencoded name equal byte for byte.
        if raw.count == name.count && memcmpEqual(raw, name) { return true }
        guard raw.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") }),
            let decoded = PercentDecoding.decode(raw, plusIsSpace: true)
        else { return false }
        return decoded.withUTF8Bytes { $0.count == name.count && memcmpEqual($0, name) }
    }

    /// The decoded value of the first parameter called `name`; `nil` when absent or when its
    /// value is not valid percent-encoded UTF-8.
    public subscript(name: String) -> String? {
        var result: String?
        name.withUTF8Bytes { nameBytes in
            forEachPair { rawName, rawValue in
                if QueryParameters.rawNameMatches(rawName, nameBytes) {
                    result = PercentDecoding.decode(rawValue, plusIsSpace: true)
                    return false
                }
                return true
            }
        }
        return result
    }

    /// Every decoded value of parameters called `name`, in order.
    public func values(_ name: String) -> [String] {
        var out: [String] = []
        name.withUTF8Bytes { nameBytes in
            forEachPair { rawName, rawValue in
                if QueryParameters.rawNameMatches(rawName, nameBytes), let v = PercentDecoding.decode(rawValue, plusIsSpace: true) {
                    out.append(v)
                }
                return true
            }
        }
        return out
    }

    /// The raw text (still encoded).
    public var rawValue: String {
        storage.withUnsafeBufferPointer { String(decoding: UnsafeBufferPointer(rebasing: $0[range]), as: UTF8.self) }
    }
}

@inline(__always) @usableFromInline
func memcmpEqual(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Bool {
    guard a.count == b.count else { return false }
    for i in 0..<a.count where a[i] != b[i] { return false }
    return true
}
