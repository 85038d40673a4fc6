/// Checks of byte ranges eight bytes at a time (SWAR: "SIMD within a register"). A word is
/// tested with a few integer operations; only a word that may hold a byte of interest is looked
/// at byte by byte. Request heads and response header values are mostly plain ASCII, so most
/// words pass in one test (docs/PERFORMANCE.md).
public enum ByteScan {
    @usableFromInline static let ones: UInt64 = 0x0101_0101_0101_0101
    @usableFromInline static let highs: UInt64 = 0x8080_8080_8080_8080
    /// The high bit of every byte: what the masks below are made of.
    @inlinable public static var highBits: UInt64 { 0x8080_8080_8080_8080 }

    /// Whether some byte of `w` is below `n` (0 < n ≤ 128): exact as a yes/no answer (Bit
    /// Twiddling Hacks' `hasless`).
    @inlinable @inline(__always)
    public static func hasByte(of w: UInt64, below n: UInt64) -> Bool {
        (w &- ones &* n) & ~w & highs != 0
    }

    /// Whether some byte of `w` equals `b`.
    @inlinable @inline(__always)
    public static func hasByte(of w: UInt64, equalTo b: UInt8) -> Bool {
        hasByte(of: w ^ (ones &* UInt64(b)), below: 1)
    }

    /// The high bit of each byte of `w` below `n` (0 < n ≤ 128). Exact for the lowest flagged
    /// byte (a borrow only flags bytes above a true one), so `trailingZeroBitCount / 8` is the
    /// offset of the first byte below `n` in little-endian memory order.
    @inlinable @inline(__always)
    public static func mask(of w: UInt64, below n: UInt64) -> UInt64 {
        (w &- ones &* n) & ~w & highs
    }

    /// The high bit of each control byte of `w` (below 32, or DEL), exact for the lowest one as
    /// in `mask(of:below:)`.
    @inlinable @inline(__always)
    public static func controlMask(_ w: UInt64) -> UInt64 {
        mask(of: w, below: 32) | mask(of: w ^ (ones &* 127), below: 1)
    }

    /// The high bit of each byte of `w` strictly between `m` and `n` (m < n ≤ 128), exact for
    /// every byte (no borrow crosses bytes: the low seven bits are added apart from the high).
    @inlinable @inline(__always)
    public static func mask(of w: UInt64, between m: UInt64, and n: UInt64) -> UInt64 {
        let low = w & (ones &* 127)
        return (ones &* (127 &+ n) &- low) & ~w & (low &+ ones &* (127 &- m)) & highs
    }

    /// The high bit of each zero byte of `w`, exact for every byte.
    @inlinable @inline(__always)
    public static func zeroMask(_ w: UInt64) -> UInt64 {
        ~(((w & (ones &* 127)) &+ ones &* 127) | w) & highs
    }

    /// The high bit of each byte of `w` that is an ASCII letter, a digit or `-` (what header
    /// field names are made of, nearly always), exact for every byte.
    @inlinable @inline(__always)
    public static func nameMask(_ w: UInt64) -> UInt64 {
        mask(of: w | ones &* 0x20, between: 0x60, and: 0x7b) | mask(of: w, between: 0x2f, and: 0x3a)
            | zeroMask(w ^ ones &* 0x2d)
    }

    /// Whether some byte of `w` is 128 or above.
    @inlinable @inline(__always)
    public static func hasHighByte(_ w: UInt64) -> Bool { w & highs != 0 }

    /// The offset of the first byte of `bytes` for which `isBad` holds, or `bytes.count`.
    /// `mayHold(word)` must be true of every eight bytes that hold such a byte (it may be true
    /// of others: those are then checked byte by byte).
    @inlinable @inline(__always)
    public static func firstIndex(in bytes: UnsafeRawBufferPointer, mayHold: (UInt64) -> Bool, isBad: (UInt8) -> Bool) -> Int {
        let n = bytes.count
        guard let p = bytes.baseAddress else { return 0 }
        var i = 0
        while i + 8 <= n {
            if mayHold(p.loadUnaligned(fromByteOffset: i, as: UInt64.self)) {
                for j in i..<(i + 8) where isBad(p.load(fromByteOffset: j, as: UInt8.self)) { return j }
            }
            i += 8
        }
        while i < n {
            if isBad(p.load(fromByteOffset: i, as: UInt8.self)) { return i }
            i += 1
        }
        return n
    }
}
