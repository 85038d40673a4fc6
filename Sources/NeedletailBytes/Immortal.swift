#if canImport(Glibc)
    import Glibc
#endif

/// A copy of `bytes` in memory that is never freed: for markup and files rendered once and then
/// sent by address in any number of pending writevs (`StaticHTML`, the client runtime).
public func immortalCopy(of bytes: some Collection<UInt8>) -> UnsafeRawBufferPointer {
    let p = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 1)
    p.copyBytes(from: bytes)
    return UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(p)[0..<bytes.count])
}

/// Writes `line` to standard error in one write(2): the framework's reports of programming
/// errors (a duplicate id, a refused identifier) and the default error log of live pages.
public func reportToStandardError(_ line: String) {
    var text = line.hasSuffix("\n") ? line : line + "\n"
    text.withUTF8 { p in _ = write(2, p.baseAddress, p.count) }
}
