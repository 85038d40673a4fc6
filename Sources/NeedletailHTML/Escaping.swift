import NeedletailBytes

/// Escaping of dynamic text for the HTML contexts it can land in.
///
/// Text content needs `& < >` replaced; attribute values (always written double-quoted) need
/// `& " ' <` too. Both functions copy unchanged runs in one go and only branch on the few bytes
/// that need replacing, so escaping costs close to a memcpy on ordinary text.
public enum HTMLEscaping {
    /// The replacement for `byte` in text and attribute values, or `nil` when it stays as is.
    @inlinable @inline(__always)
    static func entity(_ byte: UInt8) -> StaticString? {
        switch byte {
        case UInt8(ascii: "&"): return "&amp;"
        case UInt8(ascii: "<"): return "&lt;"
        case UInt8(ascii: ">"): return "&gt;"
        case UInt8(ascii: "\""): return "&quot;"
        case UInt8(ascii: "'"): return "&#39;"
        default: return nil
        }
    }

    /// Appends `text` to `buffer` with `& < > " '` replaced by entities: safe in element
    /// content and in double- or single-quoted attribute values alike.
    @inlinable
    public static func appendEscaped(_ text: UnsafeRawBufferPointer, to buffer: ByteBuffer) {
        buffer.reserve(text.count)
        var runStart = 0
        var i = 0
        let n = text.count
        while i < n {
            let b = text[i]
            // Every byte needing an entity is below '?' (0x3F); most text bytes are above it.
            if b < 0x3F, let e = entity(b) {
                if i > runStart { buffer.append(UnsafeRawBufferPointer(rebasing: text[runStart..<i])) }
                buffer.append(e)
                runStart = i + 1
            }
            i += 1
        }
        if n > runStart { buffer.append(UnsafeRawBufferPointer(rebasing: text[runStart..<n])) }
    }

    /// `text` escaped as a new string (tests, logs).
    public static func escaped(_ text: String) -> String {
        let b = ByteBuffer(capacity: text.utf8.count + 16)
        var s = text
        s.withUTF8 { appendEscaped(UnsafeRawBufferPointer($0), to: b) }
        return String(decoding: b.bytes, as: UTF8.self)
    }
}

extension Chunks {
    /// Appends `text` escaped for HTML element content or attribute values.
    @inlinable
    public mutating func append(escaping text: String) {
        var s = text
        s.withUTF8 { utf8 in
            let raw = UnsafeRawBufferPointer(utf8)
            HTMLEscaping.appendEscaped(raw, to: buffer(reserving: raw.count))
        }
    }

    /// Appends the decimal form of `value` (needs no escaping).
    @inlinable
    public mutating func append(_ value: Int) {
        buffer(reserving: 20).appendDecimal(value)
    }
}
