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
/// (Foundation's Process passes on a mask that blocks SIGTERM, which lighttpd keeps), output to
/// /dev/null. `stop()` sends SIGTERM, then SIGKILL after a grace period, and reaps it.
public final class SpawnedProcess {
    public let pid: pid_t

    public init(_ path: String, _ arguments: [String]) throws {
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
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        // Nothing else of the test process (its sockets) leaks into the child.
        nt_spawn_closefrom(&actions, 3)
        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var child: pid_t = 0
        let rc = posix_spawn(&child, path, &actions, &attr, argv, environ)
        guard rc == 0 else { throw TestClient.Failure(description: "posix_spawn \(path): \(String(cString: strerror(rc)))") }
        pid = child
    }

    private var reaped = false

    public var isRunning: Bool {
        guard !reaped else { return false }
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == pid { reaped = true }
        return !reaped
    }

    public func stop(grace: Double = 3, signal: Int32 = SIGTERM) {
        guard isRunning else { return }
        kill(pid, signal)
        let end = monotonicSeconds() + grace
        while isRunning && monotonicSeconds() < end { usleep(20_000) }
        if isRunning {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            reaped = true
        }
    }

    deinit { stop() }
}

public func run(_ program: String, _ arguments: [String], timeout: TimeInterval = 60) throws -> (status: Int32, output: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: program.hasPrefix("/") ? program : "/usr/bin/\(program)")
    p.arguments = arguments
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    try p.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
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
