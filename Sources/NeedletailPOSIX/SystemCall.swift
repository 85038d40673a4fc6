import Glibc

/// A failed system call: which call, and the errno it left, said plainly.
public struct SystemCallError: Error, Equatable, CustomStringConvertible {
    /// The call (and what it was applied to, when that helps: "open /var/lib/x").
    public let call: String
    public let errno: Int32

    public init(_ call: String, errno: Int32) {
        self.call = call
        self.errno = errno
    }

    public var description: String { "\(call): \(String(cString: strerror(errno)))" }
}

/// The one way the project makes a system call that returns -1 and sets errno on failure:
/// retried while it is interrupted by a signal (EINTR), its failure a ``SystemCallError``.
///
/// ```swift
/// let n = try SystemCall.retrying("read") { read(fd, buffer, count) }
/// ```
public enum SystemCall {
    /// Runs `body` until it returns something other than -1 with errno EINTR; throws on -1.
    @inline(__always)
    public static func retrying<T: BinaryInteger>(_ call: @autoclosure () -> String, _ body: () -> T) throws(SystemCallError) -> T {
        while true {
            let r = body()
            if r != -1 { return r }
            let e = errno
            if e != EINTR { throw SystemCallError(call(), errno: e) }
        }
    }

    /// The same for calls that may also say "not now" (EAGAIN/EWOULDBLOCK on a non-blocking
    /// descriptor): nil then.
    @inline(__always)
    public static func retryingUnlessWouldBlock<T: BinaryInteger>(
        _ call: @autoclosure () -> String, _ body: () -> T
    ) throws(SystemCallError) -> T? {
        while true {
            let r = body()
            if r != -1 { return r }
            let e = errno
            if e == EAGAIN || e == EWOULDBLOCK { return nil }
            if e != EINTR { throw SystemCallError(call(), errno: e) }
        }
    }

    /// Calls that return an error number instead of setting errno (pthread_*): throws when it
    /// is not 0.
    @inline(__always)
    public static func checking(_ call: @autoclosure () -> String, _ result: Int32) throws(SystemCallError) {
        if result != 0 { throw SystemCallError(call(), errno: result) }
    }
}
