import CNeedletailLinux
import Glibc

/// Where a listener listens: an IPv4 or IPv6 address and port, or a unix-domain socket path.
public enum SocketAddress: Sendable, Equatable, CustomStringConvertible {
    case ipv4(host: String, port: UInt16)
    case ipv6(host: String, port: UInt16)
    case unix(path: String)

    /// Parses `HOST:PORT`, `[V6]:PORT`, or `unix:/path`.
    public init(parsing text: String) throws(SocketError) {
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst(5))
            guard !path.isEmpty, path.utf8.count < 108 else {
                throw SocketError("unix socket path must be 1 to 107 bytes: \(text)")
            }
            self = .unix(path: path)
            return
        }
        guard let colon = text.lastIndex(of: ":") else {
            throw SocketError("expected HOST:PORT or unix:/path, got \(text)")
        }
        var host = String(text[..<colon])
        let portText = text[text.index(after: colon)...]
        guard let port = UInt16(portText) else { throw SocketError("bad port in \(text)") }
        if host.hasPrefix("[") && host.hasSuffix("]") {
            host = String(host.dropFirst().dropLast())
            self = .ipv6(host: host, port: port)
        } else if host.contains(":") {
            self = .ipv6(host: host, port: port)
        } else {
            self = .ipv4(host: host.isEmpty ? "0.0.0.0" : host, port: port)
        }
    }

    public var description: String {
        switch self {
        case .ipv4(let h, let p): return "\(h):\(p)"
        case .ipv6(let h, let p): return "[\(h)]:\(p)"
        case .unix(let path): return "unix:\(path)"
        }
    }

    var family: Int32 {
        switch self {
        case .ipv4: return AF_INET
        case .ipv6: return AF_INET6
        case .unix: return AF_UNIX
        }
    }

    /// Calls `body` with this address as a `sockaddr`.
    func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) throws(SocketError) -> R {
        switch self {
        case .ipv4(let host, let port):
            var sa = sockaddr_in()
            sa.sin_family = sa_family_t(AF_INET)
            sa.sin_port = port.bigEndian
            guard inet_pton(AF_INET, host, &sa.sin_addr) == 1 else {
                throw SocketError("not an IPv4 address: \(host) (use a numeric address)")
            }
            return withUnsafePointer(to: &sa) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        case .ipv6(let host, let port):
            var sa = sockaddr_in6()
            sa.sin6_family = sa_family_t(AF_INET6)
            sa.sin6_port = port.bigEndian
            guard inet_pton(AF_INET6, host, &sa.sin6_addr) == 1 else {
                throw SocketError("not an IPv6 address: \(host)")
            }
            return withUnsafePointer(to: &sa) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        case .unix(let path):
            var sa = sockaddr_un()
            sa.sun_family = sa_family_t(AF_UNIX)
            let bytes = Array(path.utf8)
            withUnsafeMutableBytes(of: &sa.sun_path) { dst in
                for (i, b) in bytes.enumerated() { dst[i] = b }
                dst[bytes.count] = 0
            }
            return withUnsafePointer(to: &sa) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
        }
    }

    /// The text form of a peer address returned by accept(2) (for logs and REMOTE_ADDR).
    static func peerDescription(_ storage: UnsafePointer<sockaddr_storage>) -> String {
        var buf = [CChar](repeating: 0, count: 64)
        switch Int32(storage.pointee.ss_family) {
        case AF_INET:
            return storage.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                var a = sin.pointee.sin_addr
                inet_ntop(AF_INET, &a, &buf, 64)
                return String(nulTerminated: buf)
            }
        case AF_INET6:
            return storage.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin in
                var a = sin.pointee.sin6_addr
                inet_ntop(AF_INET6, &a, &buf, 64)
                return String(nulTerminated: buf)
            }
        default:
            return ""
        }
    }
}

/// A failed socket operation, with the system's reason.
public struct SocketError: Error, CustomStringConvertible, Sendable {
    public let description: String
    /// The errno value, when a system call failed.
    public let errno: Int32?

    public init(_ message: String, errno: Int32? = nil) {
        if let e = errno {
            description = "\(message): \(String(cString: strerror(e)))"
        } else {
            description = message
        }
        self.errno = errno
    }
}

extension String {
    /// The text of a C string in `buffer`, up to its first NUL (all of it without one).
    init(nulTerminated buffer: [CChar]) {
        self.init(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
