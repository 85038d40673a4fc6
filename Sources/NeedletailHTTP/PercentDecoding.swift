/// Percent-decoding of URL paths, query strings and form bodies.
public enum PercentDecoding {
    @inline(__always)
    static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case 48...57: return b - 48
        case 65...70: return b - 55
        case 97...102: return b - 87
        default: return nil
        }
    }

    /// Whether every `%` in `bytes` starts a valid `%XX` escape.
    public static func isValid(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "%") {
                guard i + 2 < bytes.count, hexValue(bytes[i + 1]) != nil, hexValue(bytes[i + 2]) != nil else { return false }
                i += 3
            } else {
                i += 1
            }
        }
        return true
    }

    /// Decodes `%XX` escapes (and, with `plusIsSpace`, `+` as a space, as in query strings and
    /// form bodies). Returns `nil` on an invalid escape or bytes that are not UTF-8.
    public static func decode(_ bytes: UnsafeBufferPointer<UInt8>, plusIsSpace: Bool) -> String? {
        var needsWork = false
        for b in bytes where b == UInt8(ascii: "%") || b == UInt8(ascii: "+") || b >= 0x80 {
            needsWork = b != UInt8(ascii: "+") || plusIsSpace
            if needsWork { break }
        }
        if !needsWork { return String(decoding: bytes, as: UTF8.self) }  // ASCII, nothing to decode
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b == UInt8(ascii: "%") {
                guard i + 2 < bytes.count, let hi = hexValue(bytes[i + 1]), let lo = hexValue(bytes[i + 2]) else { return nil }
                out.append(hi << 4 | lo)
                i += 3
            } else {
                out.append(plusIsSpace && b == UInt8(ascii: "+") ? 32 : b)
                i += 1
            }
        }
        return String(validating: out, as: UTF8.self)
    }

    /// Like `decode`, but also `nil` when the result would contain a NUL (paths).
    public static func decodePath(_ bytes: UnsafeBufferPointer<UInt8>) -> String? {
        guard let s = decode(bytes, plusIsSpace: false) else { return nil }
        if bytes.contains(UInt8(ascii: "%")) {
            var copy = s
            if copy.withUTF8({ $0.contains(0) }) { return nil }
        }
        return s
    }

    /// `decodePath` for a `String`.
    public static func decodePathString(_ text: String) -> String? {
        Array(text.utf8).withUnsafeBufferPointer { decodePath($0) }
    }

    /// Decodes a `String`'s bytes (convenience).
    public static func decode(_ text: String, plusIsSpace: Bool) -> String? {
        Array(text.utf8).withUnsafeBufferPointer { decode($0, plusIsSpace: plusIsSpace) }
    }
}

/// Percent-encoding: every byte `keep` refuses written as `%XX` (upper-case hex).
public enum PercentEncoding {
    /// `text` with the bytes `keep` refuses escaped.
    public static func encoded(_ text: String, keeping keep: (UInt8) -> Bool) -> String {
        let hex: StaticString = "0123456789ABCDEF"
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        for b in text.utf8 {
            if keep(b) {
                out.append(b)
            } else {
                out += [UInt8(ascii: "%"), hex.utf8Start[Int(b >> 4)], hex.utf8Start[Int(b & 15)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// RFC 3986's unreserved characters (letters, digits, `-`, `.`, `_`, `~`): what a query
    /// value keeps as it is.
    public static func isUnreserved(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }
}
