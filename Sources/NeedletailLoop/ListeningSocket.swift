import CNeedletailLinux
import Glibc
import Synchronization

/// A bound, listening, non-blocking socket.
public struct ListeningSocket: Sendable {
    /// The file descriptor.
    public let fd: Int32
    /// What it was bound to (with the real port when port 0 was asked for).
    public let address: SocketAddress

    /// Options for `bind`.
    public struct Options: Sendable {
        /// listen(2) backlog.
        public var backlog: Int32 = 1024
        /// SO_REUSEPORT, so that every loop can have its own listener on the same port.
        public var reusePort = false
        /// File mode for a unix socket (e.g. 0o660 so the web server's group can connect).
        public var unixMode: mode_t? = nil
        /// TCP_DEFER_ACCEPT seconds (TCP only; 0 = off): the kernel hands over a connection only
        /// once its first bytes have arrived, so the loop can read right after accept instead of
        /// waiting for another readiness event (teepeedee2 did the same).
        public var deferAcceptSeconds: Int32 = 0
        /// Bind only, without listening (a probe that a port is free: a probe that listened
        /// could take a connection and then drop it).
        public var bindOnly = false
        public init() {}
    }

    /// Binds and listens. A unix socket path that exists is removed first only when nothing
    /// accepts on it (a stale socket from a crashed run); a live one is an error.
    public static func bind(_ address: SocketAddress, options: Options = Options()) throws(SocketError) -> ListeningSocket {
        let fd = socket(address.family, Int32(SOCK_STREAM.rawValue) | Int32(NT_SOCK_NONBLOCK) | Int32(NT_SOCK_CLOEXEC), 0)
        guard fd >= 0 else { throw SocketError("socket(\(address))", errno: errno) }
        var ok = false
        defer { if !ok { Glibc.close(fd) } }
        var one: Int32 = 1
        if case .unix(let path) = address {
            try removeStaleUnixSocket(path)
        } else {
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, 4)
            if options.reusePort { setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, 4) }
            if case .ipv6 = address { setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, 4) }
            if options.deferAcceptSeconds > 0 {
                var seconds = options.deferAcceptSeconds
                setsockopt(fd, Int32(IPPROTO_TCP), TCP_DEFER_ACCEPT, &seconds, 4)
            }
        }
        let rc = try address.withSockaddr { sa, len in Glibc.bind(fd, sa, len) }
        guard rc == 0 else {
            let e = errno
            if e == EADDRINUSE {
                throw SocketError("cannot listen on \(address): address already in use (is another server running there?)", errno: nil)
            }
            throw SocketError("bind(\(address))", errno: e)
        }
        if case .unix(let path) = address, let mode = options.unixMode {
            guard chmod(path, mode) == 0 else { throw SocketError("chmod(\(path))", errno: errno) }
        }
        if !options.bindOnly {
            guard listen(fd, options.backlog) == 0 else { throw SocketError("listen(\(address))", errno: errno) }
        }
        ok = true
        return ListeningSocket(fd: fd, address: boundAddress(fd: fd, asked: address))
    }

    /// Wraps an inherited listening socket (fd 0 from lighttpd or spawn-fcgi), making it
    /// non-blocking. Fails if `fd` is not a listening socket.
    public static func adopt(fd: Int32) throws(SocketError) -> ListeningSocket {
        guard isListeningSocket(fd) else { throw SocketError("fd \(fd) is not a listening socket") }
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK | O_CLOEXEC)
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        let address: SocketAddress
        switch Int32(storage.ss_family) {
        case AF_UNIX:
            let path = withUnsafeBytes(of: &storage) { raw -> String in
                raw.baseAddress!.withMemoryRebound(to: sockaddr_un.self, capacity: 1) { sun in
                    withUnsafeBytes(of: sun.pointee.sun_path) { p in String(decoding: p.prefix { $0 != 0 }, as: UTF8.self) }
                }
            }
            address = .unix(path: path)
        case AF_INET6:
            address = .ipv6(
                host: withUnsafePointer(to: &storage) { SocketAddress.peerDescription($0) },
                port: withUnsafePointer(to: &storage) {
                    $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin6_port) }
                })
        default:
            address = .ipv4(
                host: withUnsafePointer(to: &storage) { SocketAddress.peerDescription($0) },
                port: withUnsafePointer(to: &storage) {
                    $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) }
                })
        }
        return ListeningSocket(fd: fd, address: address)
    }

    /// Whether `fd` is a socket with no peer (getpeername fails with ENOTCONN): how a FastCGI
    /// app spawned by lighttpd or spawn-fcgi recognizes its listening socket on fd 0.
    public static func isListeningSocket(_ fd: Int32) -> Bool {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &len) }
        }
        return rc != 0 && errno == ENOTCONN
    }

    private static func boundAddress(fd: Int32, asked: SocketAddress) -> SocketAddress {
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        guard rc == 0 else { return asked }
        switch asked {
        case .ipv4(let h, _):
            let port = withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) }
            }
            return .ipv4(host: h, port: port)
        case .ipv6(let h, _):
            let port = withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin6_port) }
            }
            return .ipv6(host: h, port: port)
        case .unix:
            return asked
        }
    }

    /// Removes `path` if it is a socket nobody listens on; refuses if it is live or not a socket.
    static func removeStaleUnixSocket(_ path: String) throws(SocketError) {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }  // nothing there
        guard (st.st_mode & S_IFMT) == S_IFSOCK else {
            throw SocketError("\(path) exists and is not a socket; refusing to replace it")
        }
        let probe = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(NT_SOCK_CLOEXEC), 0)
        guard probe >= 0 else { throw SocketError("socket(AF_UNIX)", errno: errno) }
        defer { Glibc.close(probe) }
        let rc = try SocketAddress.unix(path: path).withSockaddr { sa, len in connect(probe, sa, len) }
        if rc == 0 {
            throw SocketError("cannot listen on unix:\(path): another process is accepting connections on it")
        }
        // ECONNREFUSED: a stale socket file left by a process that died.
        guard unlink(path) == 0 else { throw SocketError("unlink(\(path))", errno: errno) }
    }

    /// Closes the socket (and removes a unix socket's file).
    public func close(unlinking: Bool) {
        _ = Glibc.close(fd)
        if unlinking, case .unix(let path) = address { unlink(path) }
    }
}

/// A listening socket this process was started with, and the name it was given.
public struct InheritedSocket: Sendable {
    /// `LISTEN_FDNAMES`' entry for it (systemd's `FileDescriptorName=`; "unknown" when unnamed).
    public let name: String
    public let socket: ListeningSocket
}

/// The listening sockets handed to this process in the systemd socket-activation protocol:
/// `LISTEN_FDS` descriptors from fd 3 on (`LISTEN_FDS_FIRST_FD` moves the start, as
/// watchexec's `--socket` does), named by `LISTEN_FDNAMES` (colon-separated). `LISTEN_PID`,
/// when set, must be this process's id (else the variables were meant for another process and
/// are ignored); a predecessor upgrading to this process cannot know the id before it starts,
/// so it leaves `LISTEN_PID` out, as `systemfd --no-pid` does. The variables are removed once
/// read, so that processes this one starts do not take the sockets for theirs.
public enum InheritedSockets {
    private static let taken = Mutex<[InheritedSocket]?>(nil)

    /// The sockets, the first time it is called (each is used by one server); later calls get none.
    public static func take() -> [InheritedSocket] {
        taken.withLock { state in
            if state != nil { return [] }
            state = []
            return parse()
        }
    }

    /// Problems found reading the variables (a descriptor that is not a listening socket).
    public static let problems = Mutex<[String]>([])

    private static func parse() -> [InheritedSocket] {
        func variable(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }
        defer {
            for name in ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "LISTEN_FDS_FIRST_FD"] { unsetenv(name) }
        }
        guard let countText = variable("LISTEN_FDS"), let count = Int(countText), count > 0 else { return [] }
        if let pid = variable("LISTEN_PID"), Int32(pid) != getpid() { return [] }
        let first = variable("LISTEN_FDS_FIRST_FD").flatMap { Int32($0) } ?? 3
        let names = (variable("LISTEN_FDNAMES") ?? "").split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        var sockets: [InheritedSocket] = []
        for i in 0..<count {
            let fd = first + Int32(i)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            let name = i < names.count && !names[i].isEmpty ? names[i] : "unknown"
            do {
                sockets.append(InheritedSocket(name: name, socket: try ListeningSocket.adopt(fd: fd)))
            } catch {
                problems.withLock { $0.append("inherited fd \(fd) (\(name)): \(error); closed") }
                Glibc.close(fd)
            }
        }
        return sockets
    }
}
