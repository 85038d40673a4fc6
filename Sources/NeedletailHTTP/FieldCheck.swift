import NeedletailBytes

/// What may go on the wire as a header field: the one check behind every answer's fields (the
/// HTTP and CGI codecs, `FixedFields`).
package enum FieldCheck {
    /// Whether `name` is a token and `value` free of CR, LF and NUL.
    @inlinable
    package static func isSafe(name: String, value: String) -> Bool {
        let nameOK = name.withUTF8Bytes { bytes in
            guard let base = bytes.baseAddress, !bytes.isEmpty else { return false }
            // Eight bytes at a time while they are letters, digits or `-`; then byte by byte.
            var i = 0
            while i &+ 8 <= bytes.count,
                ~ByteScan.nameMask(UnsafeRawPointer(base).loadUnaligned(fromByteOffset: i, as: UInt64.self)) & ByteScan.highBits == 0
            {
                i &+= 8
            }
            while i < bytes.count {
                if !HTTPMethod.isTokenChar(bytes[i]) { return false }
                i &+= 1
            }
            return true
        }
        return nameOK && isSafe(value: value)
    }

    /// Whether a field value is free of CR, LF and NUL.
    @inlinable @inline(__always)
    package static func isSafe(value: String) -> Bool {
        return value.withUTF8Bytes { bytes in
            let raw = UnsafeRawBufferPointer(bytes)
            return ByteScan.firstIndex(
                in: raw, mayHold: { ByteScan.hasByte(of: $0, below: 14) },
                isBad: { $0 == 13 || $0 == 10 || $0 == 0 }) == raw.count
        }
    }
}
