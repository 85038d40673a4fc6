extension String {
    /// Calls `body` with the string's UTF-8 bytes. For native and small strings (all a server
    /// makes or parses) the bytes are read in place, with no copy and no retain of the string;
    /// `var s = string; s.withUTF8 {}` retained and released it on every call (36 instructions,
    /// 18 times per board page; docs/PERFORMANCE.md). Other strings are made native first.
    @inlinable @inline(__always)
    public func withUTF8Bytes<R>(_ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        if let r = try utf8.withContiguousStorageIfAvailable(body) { return r }
        var s = self
        return try s.withUTF8(body)
    }
}
