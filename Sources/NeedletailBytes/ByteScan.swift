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

    /// The high bit of each zero byte of `w`, exact for the lowest one (a borrow runs only
    /// upwards from a zero byte, so bytes above it may be flagged too): enough where only the
    /// first flagged byte is used (`firstFlagged`), and a third cheaper than `zeroMask`.
    @inlinable @inline(__always)
    public static func lowestZeroMask(_ w: UInt64) -> UInt64 {
        (w &- ones) & ~w & highs
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

    /// The offset of the first byte in `start..<count` of `p` that `flags` marks, or `count`.
    /// `flags(word)` sets the high bit of each byte of interest in a little-endian word and
    /// must be exact for the lowest one it sets (every mask above is), and must not depend on
    /// bytes above a byte: the last word is the remaining bytes with zeros above them, never a
    /// read past `count`. Eight bytes per test, a short or final run in one test too.
    @inlinable @inline(__always)
    public static func firstFlagged(in p: UnsafeRawPointer, from start: Int, count n: Int, _ flags: (UInt64) -> UInt64) -> Int {
        var i = start
        while i &+ 8 <= n {
            let m = flags(p.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            if m != 0 { return i &+ (m.trailingZeroBitCount &>> 3) }
            i &+= 8
        }
        let left = n &- i
        if left <= 0 { return n }
        let w = lastBytes(of: p, from: i, count: n)
        let m = flags(w) & (highs &>> (8 &* UInt64(8 &- left)))
        return m == 0 ? n : i &+ (m.trailingZeroBitCount &>> 3)
    }

    /// Bytes `i..<n` of `p` (one to seven) as the low bytes of a word, zeros above: one load
    /// when the range has eight bytes before its end, otherwise at most two overlapping ones.
    @inlinable @inline(__always)
    static func lastBytes(of p: UnsafeRawPointer, from i: Int, count n: Int) -> UInt64 {
        let left = n &- i
        if n >= 8 { return p.loadUnaligned(fromByteOffset: n &- 8, as: UInt64.self) &>> (8 &* UInt64(8 &- left)) }
        if left >= 4 {
            let lo = UInt64(p.loadUnaligned(fromByteOffset: i, as: UInt32.self))
            let hi = UInt64(p.loadUnaligned(fromByteOffset: n &- 4, as: UInt32.self))
            return lo | hi &<< (8 &* UInt64(left &- 4))
        }
        if left >= 2 {
            let lo = UInt64(p.loadUnaligned(fromByteOffset: i, as: UInt16.self))
            let hi = UInt64(p.loadUnaligned(fromByteOffset: n &- 2, as: UInt16.self))
            return lo | hi &<< (8 &* UInt64(left &- 2))
        }
        return UInt64(p.load(fromByteOffset: i, as: UInt8.self))
    }

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
