/// A growable run of bytes in memory that this object owns.
///
/// Unlike `[UInt8]`, the bytes live at an address that only changes when the buffer grows, and
/// a reference to the buffer keeps them alive. That is what lets a response body be handed to
/// `writev(2)` without a copy: the output queue retains the buffer and points into it.
public final class ByteBuffer {
    /// Start of the bytes; valid until the next call that grows the buffer.
    public var base: UnsafeMutableRawPointer { _base }
    /// Number of bytes written so far.
    public var count: Int { _count }
    /// Bytes that fit before the next growth.
    public var capacity: Int { _capacity }

    // A ByteBuffer is used by one thread at a time and never calls out while mutating, so the
    // runtime exclusivity checks are off (docs/PERFORMANCE.md).
    @usableFromInline @exclusivity(unchecked) var _base: UnsafeMutableRawPointer
    @usableFromInline @exclusivity(unchecked) var _count: Int
    @usableFromInline @exclusivity(unchecked) var _capacity: Int

    /// Makes an empty buffer with room for `capacity` bytes.
    public init(capacity: Int = 256) {
        let cap = max(capacity, 16)
        _base = UnsafeMutableRawPointer.allocate(byteCount: cap, alignment: 1)
        _capacity = cap
        _count = 0
    }

    deinit { base.deallocate() }

    /// Makes sure that `extra` more bytes fit without moving the buffer.
    @inlinable
    public func reserve(_ extra: Int) {
        if count + extra > capacity { grow(to: count + extra) }
    }

    @usableFromInline
    func grow(to needed: Int) {
        var newCap = capacity * 2
        while newCap < needed { newCap *= 2 }
        let newBase = UnsafeMutableRawPointer.allocate(byteCount: newCap, alignment: 1)
        newBase.copyMemory(from: base, byteCount: count)
        _base.deallocate()
        _base = newBase
        _capacity = newCap
    }

    /// Appends one byte.
    @inlinable
    public func append(_ byte: UInt8) {
        reserve(1)
        base.storeBytes(of: byte, toByteOffset: count, as: UInt8.self)
        _count += 1
    }

    /// Appends a copy of `bytes`. Inline for a short run that fits (the common case in
    /// rendering), a call otherwise.
    @inlinable @inline(__always)
    public func append(_ bytes: UnsafeRawBufferPointer) {
        let n = bytes.count
        if n > 0, n <= 16, _count + n <= _capacity, let src = bytes.baseAddress {
            Self.copySmall(to: _base + _count, from: src, count: n)
            _count += n
        } else {
            appendCopying(bytes)
        }
    }

    @usableFromInline
    func appendCopying(_ bytes: UnsafeRawBufferPointer) {
        guard let src = bytes.baseAddress, bytes.count > 0 else { return }
        reserve(bytes.count)
        (base + count).copyMemory(from: src, byteCount: bytes.count)
        _count += bytes.count
    }

    /// Appends the UTF-8 bytes of a static string literal.
    @inlinable @inline(__always)
    public func append(_ string: StaticString) {
        append(UnsafeRawBufferPointer(start: string.utf8Start, count: string.utf8CodeUnitCount))
    }

    /// Copies `count` (1...16) bytes with at most two overlapping loads and stores of a word
    /// each, inline: markup is mostly runs this short (` class="`, `</li>`), and a call to
    /// memcpy cost more than the copy (docs/PERFORMANCE.md).
    @inlinable @inline(__always)
    static func copySmall(to dst: UnsafeMutableRawPointer, from src: UnsafeRawPointer, count n: Int) {
        if n >= 8 {
            let a = src.loadUnaligned(as: UInt64.self)
            let b = src.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self)
            dst.storeBytes(of: a, as: UInt64.self)
            dst.storeBytes(of: b, toByteOffset: n - 8, as: UInt64.self)
        } else if n >= 4 {
            let a = src.loadUnaligned(as: UInt32.self)
            let b = src.loadUnaligned(fromByteOffset: n - 4, as: UInt32.self)
            dst.storeBytes(of: a, as: UInt32.self)
            dst.storeBytes(of: b, toByteOffset: n - 4, as: UInt32.self)
        } else {
            dst.storeBytes(of: src.load(as: UInt8.self), as: UInt8.self)
            if n > 1 { dst.storeBytes(of: src.load(fromByteOffset: n - 1, as: UInt8.self), toByteOffset: n - 1, as: UInt8.self) }
            if n > 2 { dst.storeBytes(of: src.load(fromByteOffset: 1, as: UInt8.self), toByteOffset: 1, as: UInt8.self) }
        }
    }

    /// Appends the UTF-8 bytes of `string`. (Labelled so that a literal picks the
    /// `StaticString` overload, which needs no UTF-8 view.)
    @inlinable
    public func append(string: String) {
        string.withUTF8Bytes { append(UnsafeRawBufferPointer($0)) }
    }

    /// Appends the decimal digits of `value`.
    @inlinable
    public func appendDecimal(_ value: Int) {
        if value < 0 { append(UInt8(ascii: "-")); appendDigits(UInt(value.magnitude), radix: 10); return }
        appendDigits(UInt(value), radix: 10)
    }

    /// Appends `value` in lower-case hexadecimal (a chunk size of chunked transfer coding).
    @inlinable
    public func appendHex(_ value: Int) {
        precondition(value >= 0)
        appendDigits(UInt(value), radix: 16)
    }

    // Always inlined: with the radix a constant the division is a multiplication (a board page
    // writes a few hundred numbers).
    @inlinable @inline(__always)
    func appendDigits(_ value: UInt, radix: UInt) {
        if value < 10 { append(UInt8(truncatingIfNeeded: value) &+ 48); return }
        var digits: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)  // 64 bytes of scratch
        var n = value
        var len = 0
        withUnsafeMutableBytes(of: &digits) { scratch in
            while n > 0 {
                let d = UInt8(truncatingIfNeeded: n % radix)
                scratch[63 - len] = d < 10 ? d &+ 48 : d &+ 87  // "0"..."9", "a"..."f"
                n /= radix
                len += 1
            }
            append(UnsafeRawBufferPointer(rebasing: scratch[(64 - len)...]))
        }
    }

    /// Makes room for up to `maxCount` bytes, lets `body` write into it, and keeps the number
    /// of bytes `body` says it wrote.
    @inlinable
    public func appendWriting(maxCount: Int, _ body: (UnsafeMutableRawBufferPointer) -> Int) {
        reserve(maxCount)
        let written = body(UnsafeMutableRawBufferPointer(start: base + count, count: maxCount))
        precondition(written >= 0 && written <= maxCount)
        _count += written
    }

    /// Forgets the first `n` bytes, moving the rest to the front.
    public func removeFirst(_ n: Int) {
        precondition(n <= count)
        if n == count { _count = 0; return }
        base.copyMemory(from: base + n, byteCount: count - n)
        _count -= n
    }

    /// Forgets every byte, keeping the memory.
    @inlinable
    public func removeAll() { _count = 0 }

    /// The bytes written so far, valid until the buffer next grows.
    @inlinable
    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

}
