import Foundation
import CNeedletailLinux
import Glibc
import NeedletailLoop

/// A free TCP port on 127.0.0.1.
public func freePort() -> UInt16 {
    let s = try! ListeningSocket.bind(.ipv4(host: "127.0.0.1", port: 0))
    defer { s.close(unlinking: false) }
    if case .ipv4(_, let p) = s.address { return p }
    return 0
}

/// Waits until something accepts on 127.0.0.1:port.
@discardableResult
public func waitForPort(_ port: UInt16, seconds: Double = 10) -> Bool {
    let end = monotonicSeconds() + seconds
    while monotonicSeconds() < end {
        if (try? TestClient(.ipv4(host: "127.0.0.1", port: port), timeout: 1)) != nil { return true }
        usleep(50_000)
    }
    return false
}

/// The demo serving FastCGI on the unix socket `sock` with `arguments` added, once the socket
/// exists (up to 4 s).
public func demoOnFastCGISocket(_ sock: String, _ arguments: [String]) throws -> SpawnedProcess {
    let app = try SpawnedProcess(demoBinary(), ["serve", "--fastcgi", "unix:" + sock] + arguments)
    var waited = 0
    while !FileManager.default.fileExists(atPath: sock) && waited < 200 { usleep(20_000); waited += 1 }
    return app
}

/// A temporary directory that everyone can traverse (nginx workers run as another user).
public func makeTempDir(_ prefix: String) -> String {
    var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
    let path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    chmod(path, 0o755)
    return path
}

public let packageRoot: String = {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
}()

/// A shipped config file with its example paths and ports replaced.
public func shippedConfig(_ relative: String, replacing: [(String, String)]) throws -> String {
    var text = try String(contentsOfFile: packageRoot + "/" + relative, encoding: .utf8)
    for (a, b) in replacing { text = text.replacingOccurrences(of: a, with: b) }
    return text
}

/// A child process started with posix_spawn, with a clean signal mask and default handlers
/// (Foundation's Process passes on a mask that blocks SIGTERM, which lighttpd keeps), and none
/// of the test process's descriptors but the pipes asked for. Output goes to /dev/null unless
/// `capture` asks for a pipe; `input` is written to its stdin, which is then closed.
/// `stop()` sends SIGTERM, then SIGKILL after a grace period, and reaps it.
///
/// The tests use this rather than Foundation's `Process`: on Linux, `Process.run()` lists
/// /proc/self/fd and copies a full 256-byte `d_name` out of each entry, which can read past the
/// end of readdir's 32 KB buffer. It crashed a CI run (SIGSEGV in memcpy) on the 1,365th entry,
/// the last of a full buffer, while tests with a thousand connections in flight held the
/// descriptors and another test ran curl.
public final class SpawnedProcess {
    /// Which of the child's output streams go into the pipe that `readOutput()` reads.
    public enum Capture: Sendable { case none, stdout, stderr, both }

    public let pid: pid_t
    private var outputFD: Int32 = -1
    private var reaped = false
    private var status: Int32 = 0

    public init(
        _ path: String, _ arguments: [String], environment: [String: String]? = nil,
        capture: Capture = .none, input: String? = nil
    ) throws {
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attr, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for s in [SIGTERM, SIGINT, SIGPIPE, SIGQUIT, SIGHUP] { sigaddset(&defaults, s) }
        posix_spawnattr_setsigdefault(&attr, &defaults)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // Pipes are close-on-exec here, so no other child started meanwhile inherits them;
        // dup2 in the child clears the flag on the copy.
        var inputPipe: [Int32] = [-1, -1]
        var outputPipe: [Int32] = [-1, -1]
        func closeAll() { for fd in inputPipe + outputPipe where fd >= 0 { Glibc.close(fd) } }
        if input != nil {
            guard nt_pipe_cloexec(&inputPipe) == 0 else { throw Self.failure("pipe", path) }
            posix_spawn_file_actions_adddup2(&actions, inputPipe[0], 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        if capture != .none {
            guard nt_pipe_cloexec(&outputPipe) == 0 else { closeAll(); throw Self.failure("pipe", path) }
        }
        for (fd, captured) in [(Int32(1), capture == .stdout || capture == .both), (2, capture == .stderr || capture == .both)] {
            if captured {
                posix_spawn_file_actions_adddup2(&actions, outputPipe[1], fd)
            } else {
                posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", O_WRONLY, 0)
            }
        }
        // Nothing else of the test process (its sockets) leaks into the child.
        nt_spawn_closefrom(&actions, 3)
        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        let envp: [UnsafeMutablePointer<CChar>?]? = environment.map { $0.map { strdup("\($0.key)=\($0.value)") } + [nil] }
        defer { for p in envp ?? [] { free(p) } }
        var child: pid_t = 0
        let rc = envp.map { e in e.withUnsafeBufferPointer { posix_spawn(&child, path, &actions, &attr, argv, UnsafeMutablePointer(mutating: $0.baseAddress)) } }
            ?? posix_spawn(&child, path, &actions, &attr, argv, environ)
        guard rc == 0 else {
            closeAll()
            throw TestClient.Failure(description: "posix_spawn \(path): \(String(cString: strerror(rc)))")
        }
        pid = child
        if inputPipe[0] >= 0 {
            Glibc.close(inputPipe[0])
            var bytes = Array((input ?? "").utf8)[...]
            while !bytes.isEmpty {
                let n = bytes.withUnsafeBytes { Glibc.write(inputPipe[1], $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                bytes = bytes.dropFirst(n)
            }
            Glibc.close(inputPipe[1])
        }
        if outputPipe[1] >= 0 {
            Glibc.close(outputPipe[1])
            outputFD = outputPipe[0]
        }
    }

    private static func failure(_ what: String, _ path: String) -> TestClient.Failure {
        TestClient.Failure(description: "\(what) for \(path): \(String(cString: strerror(errno)))")
    }

    /// Everything the child writes to the captured streams, up to their end (the child's exit,
    /// or its closing them); empty when nothing is captured or it was read before.
    public func readOutput() -> String {
        guard outputFD >= 0 else { return "" }
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(outputFD, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            data.append(contentsOf: buffer[..<n])
        }
        Glibc.close(outputFD)
        outputFD = -1
        return String(decoding: data, as: UTF8.self)
    }

    /// Waits for the child to end and returns its exit status, or the number of the signal
    /// that ended it.
    @discardableResult
    public func waitForExit() -> Int32 {
        while !reaped {
            var raw: Int32 = 0
            let r = waitpid(pid, &raw, 0)
            if r == pid { record(raw) } else if r < 0 && errno != EINTR { reaped = true }
        }
        return status
    }

    private func record(_ raw: Int32) {
        reaped = true
        let signal = raw & 0x7f
        status = signal == 0 ? (raw >> 8) & 0xff : signal
    }

    public var isRunning: Bool {
        guard !reaped else { return false }
        var raw: Int32 = 0
        if waitpid(pid, &raw, WNOHANG) == pid { record(raw) }
        return !reaped
    }

    public func stop(grace: Double = 3, signal: Int32 = SIGTERM) {
        guard isRunning else { return }
        kill(pid, signal)
        let end = monotonicSeconds() + grace
        while isRunning && monotonicSeconds() < end { usleep(20_000) }
        if isRunning {
            kill(pid, SIGKILL)
            waitForExit()
        }
    }

    deinit {
        stop()
        if outputFD >= 0 { Glibc.close(outputFD) }
    }
}

/// Runs `program` (a bare name is looked up in /usr/bin) to its end: its exit status and its
/// stdout and stderr together. A program still running after `timeout` seconds is stopped
/// (coreutils `timeout`: TERM, then KILL 5 s later) and the status is 124 or 137, so that a
/// client that hangs fails its test instead of holding the whole run.
public func run(
    _ program: String, _ arguments: [String], environment: [String: String]? = nil, input: String? = nil,
    timeout: Int = 120
) throws -> (status: Int32, output: String) {
    let path = program.hasPrefix("/") ? program : "/usr/bin/\(program)"
    let p = try SpawnedProcess(
        "/usr/bin/timeout", ["--kill-after=5", "\(timeout)", path] + arguments, environment: environment,
        capture: .both, input: input)
    let output = p.readOutput()
    return (p.waitForExit(), output)
}

public func toolAvailable(_ name: String) -> Bool {
    FileManager.default.isExecutableFile(atPath: "/usr/bin/\(name)")
}

/// The demo binary built next to the test bundle.
/// utime + stime of process `pid`, in clock ticks.
public func cpuTicks(_ pid: pid_t) -> Int {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = text.lastIndex(of: ")")
    else { return 0 }
    let fields = text[text.index(after: close)...].split(separator: " ")
    return (Int(fields[11]) ?? 0) + (Int(fields[12]) ?? 0)
}

public func demoBinary() -> String {
    let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for candidate in [bundle, bundle.deletingLastPathComponent()] {
        let path = candidate.appendingPathComponent("needletail-demo").path
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    return ".build/debug/needletail-demo"
}

public func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
