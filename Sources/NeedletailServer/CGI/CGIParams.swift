import Glibc

/// CGI/1.1 variables (RFC 3875) as one byte array and the ranges of each name and value: how
/// FastCGI PARAMS arrive, and what the gateway reads without making a string per variable.
public struct CGIParams {
    public var bytes: [UInt8]
    public var pairs: [(name: Range<Int>, value: Range<Int>)]

    public init(bytes: [UInt8], pairs: [(name: Range<Int>, value: Range<Int>)]) {
        self.bytes = bytes
        self.pairs = pairs
    }

    /// From name-value strings (plain CGI's environment, libfcgi's envp).
    public init(_ list: [(name: String, value: String)]) {
        var bytes: [UInt8] = []
        var pairs: [(name: Range<Int>, value: Range<Int>)] = []
        for (n, v) in list {
            let ns = bytes.count
            bytes += n.utf8
            let vs = bytes.count
            bytes += v.utf8
            pairs.append((ns..<vs, vs..<bytes.count))
        }
        self.init(bytes: bytes, pairs: pairs)
    }

    /// The value of the first variable called `name`.
    public func value(_ name: StaticString) -> String? {
        for p in pairs where equals(p.name, name) { return String(decoding: bytes[p.value], as: UTF8.self) }
        return nil
    }

    @inline(__always)
    func equals(_ r: Range<Int>, _ s: StaticString) -> Bool {
        guard r.count == s.utf8CodeUnitCount, r.lowerBound >= 0, r.upperBound <= bytes.count else { return false }
        if r.isEmpty { return true }
        return bytes.withUnsafeBufferPointer { memcmp($0.baseAddress! + r.lowerBound, s.utf8Start, r.count) == 0 }
    }
}
