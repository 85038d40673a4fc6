/// An HTTP version (1.0 or 1.1 on the wire; FastCGI and CGI carry theirs in SERVER_PROTOCOL).
public struct HTTPVersion: Sendable, Equatable, CustomStringConvertible {
    public var major: Int
    public var minor: Int
    @inlinable public init(major: Int, minor: Int) { self.major = major; self.minor = minor }
    @inlinable public static var http1_0: HTTPVersion { HTTPVersion(major: 1, minor: 0) }
    @inlinable public static var http1_1: HTTPVersion { HTTPVersion(major: 1, minor: 1) }
    public var description: String { "HTTP/\(major).\(minor)" }
}
