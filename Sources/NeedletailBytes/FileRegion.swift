#if canImport(Glibc)
    import Glibc
#endif

/// An open file descriptor, closed when the last reference goes: lets a response body be a
/// file that the socket writer sends with sendfile(2) while the handler has long returned.
public final class OpenFile: Sendable {
    /// The descriptor (read-only, close-on-exec).
    public let fd: Int32

    /// Takes ownership of `fd`.
    public init(fd: Int32) { self.fd = fd }

    /// Opens `path` read-only; nil if it cannot be opened.
    public convenience init?(path: String) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        self.init(fd: fd)
    }

    deinit { close(fd) }
}

/// A byte range of an open file, as a response body.
public struct FileRegion: Sendable {
    public let file: OpenFile
    public let offset: Int
    public let count: Int

    public init(file: OpenFile, offset: Int, count: Int) {
        self.file = file
        self.offset = offset
        self.count = count
    }

    /// The bytes as a chain (read with pread), for the paths that cannot use sendfile
    /// (FastCGI records, CGI, the libfcgi responder). Nil on a read error or a short file.
    public func read() -> Chunks? {
        var c = Chunks()
        let buf = c.buffer(reserving: count)
        var done = 0
        var failed = false
        buf.appendWriting(maxCount: count) { dst in
            while done < count {
                let n = pread(file.fd, dst.baseAddress! + done, count - done, off_t(offset + done))
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { failed = true; break }
                done += n
            }
            return done
        }
        return failed ? nil : c
    }
}
