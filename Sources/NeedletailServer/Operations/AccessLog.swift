import Glibc
import NeedletailBytes
import NeedletailHTTP
import NeedletailPOSIX

/// The access log: one line per answered request in nginx's `combined` format, written by the
/// loops into buffers of their own and handed to one writer thread, so that a request costs
/// no system call (docs/OPERATIONS.md).
public struct AccessLogSettings: Sendable {
    /// A file (appended to, created 0644 if missing) or `-` for standard output.
    public var path: String
    /// Appends the request's time in microseconds and the loop's index to each line
    /// (`... "curl/8.0" 183 0`), after nginx's `combined` fields.
    public var timed = false
    /// A loop hands its buffer to the writer when it holds this many bytes, and at least once a second.
    public var flushBytes = 32 * 1024

    public init(path: String, timed: Bool = false) {
        self.path = path
        self.timed = timed
    }
}

/// The file and its writer thread, shared by the loops. Reopened on SIGUSR1 (logrotate's
/// `postrotate`), as nginx does.
final class AccessLogFile: @unchecked Sendable {
    let path: String
    // Guarded by `mutex`.
    private var mutex = pthread_mutex_t()
    private var condition = pthread_cond_t()
    private var queue: [ByteBuffer] = []
    private var reopenRequested = false
    private var stopping = false
    private var writing = false
    // The writer thread's own.
    private var fd: Int32
    private var thread: pthread_t?
    private var lastError: UInt64 = 0

    /// Opens the file now, so that a path that cannot be written refuses the start.
    init(path: String) throws(SystemCallError) {
        self.path = path
        fd = try Self.open(path)
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&condition, nil)
        thread = try POSIXThread.spawn(name: "access log") { [self] in run() }
    }

    private static func open(_ path: String) throws(SystemCallError) -> Int32 {
        if path == "-" { return 1 }
        return try SystemCall.retrying("open \(path)") { Glibc.open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644) }
    }

    /// Takes a loop's full buffer (any thread).
    func submit(_ buffer: ByteBuffer) {
        pthread_mutex_lock(&mutex)
        queue.append(buffer)
        pthread_cond_signal(&condition)
        pthread_mutex_unlock(&mutex)
    }

    /// Closes and opens the file again at its path, after writing what is queued (SIGUSR1).
    func reopen() {
        pthread_mutex_lock(&mutex)
        reopenRequested = true
        pthread_cond_signal(&condition)
        pthread_mutex_unlock(&mutex)
    }

    /// Writes everything queued, then ends the writer thread (at stop, after the loops' last flush).
    func finish() {
        pthread_mutex_lock(&mutex)
        stopping = true
        pthread_cond_signal(&condition)
        pthread_mutex_unlock(&mutex)
        if let t = thread { pthread_join(t, nil) }
        thread = nil
        if fd > 2 { close(fd) }
    }

    private func run() {
        pthread_mutex_lock(&mutex)
        while true {
            while queue.isEmpty && !reopenRequested && !stopping { pthread_cond_wait(&condition, &mutex) }
            let batch = queue
            queue = []
            let reopen = reopenRequested
            reopenRequested = false
            let stop = stopping
            pthread_mutex_unlock(&mutex)
            for buffer in batch { write(buffer.bytes) }
            if reopen { reopenFile() }
            if stop { return }
            pthread_mutex_lock(&mutex)
        }
    }

    private func write(_ bytes: UnsafeRawBufferPointer) {
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                report("cannot write the access log \(path): \(String(cString: strerror(errno)))")
                return
            }
            offset += n
        }
    }

    private func reopenFile() {
        guard path != "-" else { return }
        do {
            let new = try Self.open(path)
            close(fd)
            fd = new
        } catch {
            report("cannot reopen the access log \(path), still writing to the old file: \(error)")
        }
    }

    /// At most one line every 10 s on standard error (the logger may itself be this file's neighbour).
    private func report(_ line: String) {
        let now = secondsSinceBoot()
        guard now - lastError >= 10 || lastError == 0 else { return }
        lastError = now
        reportToStandardError("needletail: " + line)
    }
}

/// One loop's lines waiting to be handed to the writer (loop-confined).
final class AccessLogBuffer {
    let file: AccessLogFile
    let settings: AccessLogSettings
    let loopIndex: Int
    private var buffer: ByteBuffer
    /// `[04/Dec/2026:22:59:10 +0000] "` for the second it was made in.
    private var timeSecond = -1
    private var timeField: [UInt8] = []
    /// The last line's start, when its peer was an IPv4 address: that address and second.
    private var prefix = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 1)
    private var prefixCount = 0
    private var prefixIPv4: UInt32 = 0
    private var prefixSecond = -1

    init(file: AccessLogFile, settings: AccessLogSettings, loopIndex: Int) {
        self.file = file
        self.settings = settings
        self.loopIndex = loopIndex
        buffer = ByteBuffer(capacity: settings.flushBytes + 4096)
    }

    deinit { prefix.deallocate() }

    /// Hands what is buffered to the writer (the loop's once-a-second timer, and at stop).
    func flush() {
        guard buffer.count > 0 else { return }
        file.submit(buffer)
        buffer = ByteBuffer(capacity: settings.flushBytes + 4096)
    }

    /// Appends one combined-format line. Every field is written from the request's own bytes
    /// (no String is made per line): the address formatted here, the target and the two header
    /// values read in place and escaped a run at a time.
    func append(
        _ request: borrowing Request, status: Int, bodyBytes: Int, microseconds: Int, now: Int
    ) {
        let out = buffer
        appendPrefix(request.remote, now: now, to: out)
        out.append(request.method.name)
        out.append(32)
        request.withTargetBytes { Self.appendEscaped($0, to: out) }
        out.append(32)
        out.append(request.version == .http1_0 ? "HTTP/1.0" : "HTTP/1.1")
        out.append("\" ")
        appendStatus(status, bodyBytes: bodyBytes, to: out)
        out.append(" \"")
        request.headers.withRefererAndAgent { referer, agent in
            Self.appendEscaped(referer, to: out)
            out.append("\" \"")
            Self.appendEscaped(agent, to: out)
        }
        out.append("\"")
        end(microseconds: microseconds, to: out)
    }

    /// The line of a request the codec refused before it was parsed (400, 408, 413, 431…):
    /// `"-"` for the request, the Referer and the User-Agent, as nothing of them was read.
    func appendRefused(_ remote: RemoteAddress, status: Int, bodyBytes: Int, now: Int) {
        let out = buffer
        appendPrefix(remote, now: now, to: out)
        out.append("-\" ")
        appendStatus(status, bodyBytes: bodyBytes, to: out)
        out.append(" \"-\" \"-\"")
        end(microseconds: 0, to: out)
    }

    /// `STATUS BYTES`.
    @inline(__always)
    private func appendStatus(_ status: Int, bodyBytes: Int, to out: ByteBuffer) {
        if status >= 100 && status < 1000 {
            out.append(UInt8(truncatingIfNeeded: 48 + status / 100))
            out.append(UInt8(truncatingIfNeeded: 48 + status / 10 % 10))
            out.append(UInt8(truncatingIfNeeded: 48 + status % 10))
        } else {
            out.appendDecimal(status)
        }
        out.append(32)
        out.appendDecimal(bodyBytes)
    }

    /// The timed fields if asked for, the newline, and a flush once the buffer is full.
    @inline(__always)
    private func end(microseconds: Int, to out: ByteBuffer) {
        if settings.timed {
            out.append(32)
            out.appendDecimal(microseconds)
            out.append(32)
            out.appendDecimal(loopIndex)
        }
        out.append(10)
        if out.count >= settings.flushBytes { flush() }
    }

    /// `ADDRESS - - [TIME] "`: copied whole from the last line's when the address is the same
    /// IPv4 address and the second the same (a keep-alive connection's requests, mostly).
    private func appendPrefix(_ remote: RemoteAddress, now: Int, to out: ByteBuffer) {
        if case .ipv4(let a) = remote, a == prefixIPv4, now == prefixSecond {
            out.append(UnsafeRawBufferPointer(rebasing: prefix[..<prefixCount]))
            return
        }
        if now != timeSecond {
            timeSecond = now
            timeField = Array(Self.localTime(now).utf8)
        }
        let start = out.count
        Self.appendAddress(remote, to: out)
        out.append(" - - [")
        timeField.withUnsafeBytes { out.append($0) }
        out.append("] \"")
        // An IPv4 prefix is at most 15 + 6 + 26 + 3 bytes.
        guard case .ipv4(let a) = remote, out.count - start <= prefix.count else {
            prefixSecond = -1
            return
        }
        prefixCount = out.count - start
        prefix.copyMemory(from: UnsafeRawBufferPointer(rebasing: out.bytes[start...]))
        prefixIPv4 = a
        prefixSecond = now
    }

    /// The peer's address as nginx's `$remote_addr` writes it; `-` when there is none.
    static func appendAddress(_ remote: RemoteAddress, to out: ByteBuffer) {
        switch remote {
        case .ipv4(let a):
            withUnsafeBytes(of: a) { b in
                out.appendDecimal(Int(b[0]))
                for i in 1..<4 {
                    out.append(UInt8(ascii: "."))
                    out.appendDecimal(Int(b[i]))
                }
            }
        case .unknown:
            out.append(UInt8(ascii: "-"))
        case .text(let s):
            if s.isEmpty { out.append(UInt8(ascii: "-")) } else { s.withUTF8Bytes { appendEscaped(UnsafeRawBufferPointer($0), to: out) } }
        case .ipv6:
            remote.description.withUTF8Bytes { appendEscaped(UnsafeRawBufferPointer($0), to: out) }
        }
    }

    /// nginx's escaping of logged values: `"`, `\`, control bytes and bytes over 0x7e as `\xHH`;
    /// `-` for a value that is absent. Runs of plain bytes are copied whole.
    static func appendEscaped(_ bytes: UnsafeRawBufferPointer?, to out: ByteBuffer) {
        guard let bytes, let base = bytes.baseAddress else {
            out.append(UInt8(ascii: "-"))
            return
        }
        if isPlain(bytes) {
            out.append(bytes)
            return
        }
        var start = 0
        let n = bytes.count
        while start < n {
            let rest = UnsafeRawBufferPointer(start: base + start, count: n - start)
            let bad = ByteScan.firstIndex(in: rest, mayHold: mayNeedEscape, isBad: needsEscape)
            if bad > 0 { out.append(UnsafeRawBufferPointer(start: rest.baseAddress, count: bad)) }
            guard bad < rest.count else { return }
            let b = rest[bad]
            out.append("\\x")
            out.append(hex[Int(b >> 4)])
            out.append(hex[Int(b & 15)])
            start += bad + 1
        }
    }

    /// Whether no byte of `bytes` needs escaping, checked a word at a time: the last word
    /// overlaps the one before it, so a value of eight bytes or more has no byte-by-byte tail.
    @inline(__always)
    static func isPlain(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let n = bytes.count
        guard let p = bytes.baseAddress, n >= 8 else {
            for b in bytes where needsEscape(b) { return false }
            return true
        }
        var i = 0
        while i + 8 < n {
            if mayNeedEscape(p.loadUnaligned(fromByteOffset: i, as: UInt64.self)) { return false }
            i += 8
        }
        return !mayNeedEscape(p.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self))
    }

    /// Whether a logged byte is written as `\xHH`: below 0x20, above 0x7e, `"` or `\`.
    @inline(__always)
    static func needsEscape(_ b: UInt8) -> Bool { b &- 0x20 > 0x5e || b == 0x22 || b == 0x5c }

    /// Whether eight bytes may hold one that `needsEscape` (eight at a time: ByteScan).
    @inline(__always)
    static func mayNeedEscape(_ w: UInt64) -> Bool {
        ByteScan.hasByte(of: w, below: 0x20) || ByteScan.hasHighByte(w) || ByteScan.hasByte(of: w, equalTo: 0x22)
            || ByteScan.hasByte(of: w, equalTo: 0x5c) || ByteScan.hasByte(of: w, equalTo: 0x7f)
    }

    private static let hex: [UInt8] = Array("0123456789ABCDEF".utf8)
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// `04/Dec/2026:22:59:10 +0100`: nginx's `$time_local`.
    static func localTime(_ seconds: Int) -> String {
        var t = time_t(seconds)
        var tm = tm()
        localtime_r(&t, &tm)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let offset = tm.tm_gmtoff / 60
        let sign = offset < 0 ? "-" : "+"
        let hours = abs(offset) / 60, minutes = abs(offset) % 60
        return "\(two(tm.tm_mday))/\(months[Int(tm.tm_mon)])/\(1900 + tm.tm_year):\(two(tm.tm_hour)):\(two(tm.tm_min)):\(two(tm.tm_sec)) "
            + "\(sign)\(two(Int32(hours)))\(two(Int32(minutes)))"
    }
}
