import CNeedletailLinux
import Glibc
import Logging
import Synchronization

/// Where a server's log lines go: what an operator reads when something is wrong.
///
/// A process started by a daemon (lighttpd's `bin-path` when lighttpd runs in the background,
/// spawn-fcgi, an init script) often has its standard error on /dev/null, so the one line that
/// says why a page fails would be lost. ``automatic`` picks standard error when it leads
/// somewhere and syslog (the journal on systemd machines) when it does not.
public enum LogDestination: Sendable, Equatable, CustomStringConvertible {
    /// Standard error, one line per message with the time and level.
    case standardError
    /// A file, opened for appending (created with mode 0640 when missing).
    case file(String)
    /// Datagrams to a syslog socket, facility `daemon` (`/dev/log`: syslogd, rsyslog or journald).
    case syslog(socket: String)

    /// The usual syslog socket.
    public static let systemLog = LogDestination.syslog(socket: "/dev/log")

    /// Parses `--log-file`'s value: `stderr`, `syslog`, `syslog:/path/to/socket`, or a file path.
    public init(parsing text: String) {
        switch text {
        case "stderr", "-": self = .standardError
        case "syslog": self = .systemLog
        default:
            if text.hasPrefix("syslog:") { self = .syslog(socket: String(text.dropFirst("syslog:".count))) } else { self = .file(text) }
        }
    }

    /// Standard error, unless it goes nowhere (/dev/null, or closed): then syslog.
    public static var automatic: LogDestination {
        standardErrorGoesNowhere ? .systemLog : .standardError
    }

    /// True when fd 2 is closed or is /dev/null.
    public static var standardErrorGoesNowhere: Bool {
        var s = stat(), null = stat()
        guard fstat(2, &s) == 0 else { return true }
        guard stat("/dev/null", &null) == 0 else { return false }
        return (s.st_mode & S_IFMT) == S_IFCHR && s.st_rdev == null.st_rdev
    }

    public var description: String {
        switch self {
        case .standardError: return "standard error"
        case .file(let path): return path
        case .syslog(let socket): return "syslog (\(socket))"
        }
    }

    /// Opens the destination: a sink that any thread may write lines to.
    public func open(tag: String) throws(LogSinkError) -> LogSink {
        switch self {
        case .standardError:
            return LogSink(fd: 2, owned: false, syslogTag: nil)
        case .file(let path):
            let fd = Glibc.open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
            guard fd >= 0 else { throw LogSinkError(destination: self, errno: errno) }
            return LogSink(fd: fd, owned: true, syslogTag: tag)
        case .syslog(let socketPath):
            let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(NT_SOCK_NONBLOCK) | Int32(NT_SOCK_CLOEXEC), 0)
            guard fd >= 0 else { throw LogSinkError(destination: self, errno: errno) }
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            let bytes = Array(socketPath.utf8)
            let capacity = MemoryLayout.size(ofValue: address.sun_path)
            guard bytes.count < capacity else {
                Glibc.close(fd)
                throw LogSinkError(destination: self, errno: ENAMETOOLONG)
            }
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                raw.copyBytes(from: bytes)
                raw[bytes.count] = 0
            }
            let rc = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            guard rc == 0 else {
                let e = errno
                Glibc.close(fd)
                throw LogSinkError(destination: self, errno: e)
            }
            return LogSink(fd: fd, owned: true, syslogTag: tag, syslog: true)
        }
    }
}

/// A log destination that cannot be opened, with the system's reason.
public struct LogSinkError: Error, CustomStringConvertible {
    public let destination: LogDestination
    public let errno: Int32
    public var description: String { "cannot open the log \(destination): \(String(cString: strerror(errno)))" }
}

/// An open log destination. Each line is one `write(2)` or datagram, so lines from several
/// threads never interleave; a syslog socket that is full drops the line rather than block
/// the loop that logs it (the count of dropped lines goes into the next line that gets through).
public final class LogSink: Sendable {
    private let fd: Int32
    private let owned: Bool
    private let syslogTag: String?
    private let isSyslog: Bool
    /// Lines a full syslog socket refused, counted until one gets through.
    private let dropped = Atomic<Int>(0)
    /// The level of every ``LogSinkHandler`` writing here (an index into `Logger.Level.allCases`).
    private let threshold = Atomic<Int>(Logger.Level.allCases.firstIndex(of: .info) ?? 2)

    /// The lowest level written, shared by every logger writing to this sink, so that a reload
    /// (SIGHUP) changes it for all of them at once. Default: info.
    public var level: Logger.Level {
        get { Logger.Level.allCases[threshold.load(ordering: .relaxed)] }
        set { threshold.store(Logger.Level.allCases.firstIndex(of: newValue) ?? 2, ordering: .relaxed) }
    }

    init(fd: Int32, owned: Bool, syslogTag: String?, syslog: Bool = false) {
        (self.fd, self.owned, self.syslogTag, self.isSyslog) = (fd, owned, syslogTag, syslog)
    }

    deinit { if owned { Glibc.close(fd) } }

    /// Writes one message at `level`, with the time (files and standard error) or the syslog
    /// header (syslog adds the time itself).
    public func write(level: Logger.Level, label: String, message: String) {
        var line: String
        if isSyslog {
            line = "<\(3 * 8 + Self.severity(level))>\(syslogTag ?? label)[\(getpid())]: "
        } else {
            // The pid: during a live upgrade two processes write to the same log.
            line = Self.timestamp() + " " + level.rawValue + " " + label + "[\(getpid())]: "
        }
        let lost = dropped.exchange(0, ordering: .relaxed)
        if lost > 0 { line += "(\(lost) earlier log lines dropped: the syslog socket was full) " }
        line += message
        if !isSyslog { line += "\n" }
        let sent =
            line.utf8.withContiguousStorageIfAvailable { Glibc.write(fd, $0.baseAddress, $0.count) }
            ?? Array(line.utf8).withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        if sent < 0 && isSyslog { dropped.add(1, ordering: .relaxed) }
    }

    /// RFC 5424 severities.
    static func severity(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: return 7
        case .info: return 6
        case .notice: return 5
        case .warning: return 4
        case .error: return 3
        case .critical: return 2
        }
    }

    /// "2026-12-03T13:40:53Z" (UTC, as the other lines of a server's log are read across zones).
    static func timestamp() -> String {
        var t = time(nil)
        var parts = tm()
        gmtime_r(&t, &parts)
        var buffer = [CChar](repeating: 0, count: 32)
        let n = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%SZ", &parts)
        return String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

}

/// A swift-log handler writing to a ``LogSink``: `LoggingSystem.bootstrap { LogSinkHandler(label: $0, sink: sink) }`.
public struct LogSinkHandler: LogHandler {
    public let label: String
    public let sink: LogSink
    /// The sink's level (``LogSink/level``): setting it here sets it for every logger of the sink.
    public var logLevel: Logger.Level {
        get { sink.level }
        nonmutating set { sink.level = newValue }
    }
    public var metadata: Logger.Metadata = [:]

    public init(label: String, sink: LogSink) { (self.label, self.sink) = (label, sink) }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var text = event.message.description
        let all = event.metadata.map { metadata.merging($0) { $1 } } ?? metadata
        if !all.isEmpty {
            text += " " + all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        }
        sink.write(level: event.level, label: label, message: text)
    }
}
