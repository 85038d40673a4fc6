import Foundation
import CNeedletailLinux
import Glibc
import NeedletailLoop

/// A free TCP port on 127.0.0.1.
func freePort() -> UInt16 {
    let s = try! ListeningSocket.bind(.ipv4(host: "127.0.0.1", port: 0))
    defer { s.close(unlinking: false) }
    if case .ipv4(_, let p) = s.address { return p }
    return 0
}

/// Waits until something accepts on 127.0.0.1:port.
@discardableResult
func waitForPort(_ port: UInt16, seconds: Double = 10) -> Bool {
    let end = monotonicSeconds() + seconds
    while monotonicSeconds() < end {
        if (try? TestClient(.ipv4(host: "127.0.0.1", port: port), timeout: 1)) != nil { return true }
        usleep(50_000)
    }
    return false
}

/// The demo serving FastCGI on the unix socket `sock` with `arguments` added, once the socket
/// exists (up to 4 s).
func demoOnFastCGISocket(_ sock: String, _ arguments: [String]) throws -> SpawnedProcess {
    let app = try SpawnedProcess(demoBinary(), ["serve", "--fastcgi", "unix:" + sock] + arguments)
    var waited = 0
    while !FileManager.default.fileExists(atPath: sock) && waited < 200 { usleep(20_000); waited += 1 }
    return app
}

/// A temporary directory that everyone can traverse (nginx workers run as another user).
func makeTempDir(_ prefix: String) -> String {
    var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
    let path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    chmod(path, 0o755)
    return path
}

let packageRoot: String = {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
}()

/// A shipped config file with its example paths and ports replaced.
func shippedConfig(_ relative: String, replacing: [(String, String)]) throws -> String {
    var text = try String(contentsOfFile: packageRoot + "/" + relative, encoding: .utf8)
    for (a, b) in replacing { text = text.replacingOccurrences(of: a, with: b) }
    return text
}

/// A child process started with posix_spawn, with a clean signal mask and default handlers
/// (Foundation's Process passes on a mask that blocks SIGTERM, which lighttpd keeps), output to
/// /dev/null. `stop()` sends SIGTERM, then SIGKILL after a grace period, and reaps it.
final class SpawnedProcess {
    let pid: pid_t

    init(_ path: String, _ arguments: [String]) throws {
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

    var isRunning: Bool {
        guard !reaped else { return false }
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == pid { reaped = true }
        return !reaped
    }

    func stop(grace: Double = 3) {
        guard isRunning else { return }
        kill(pid, SIGTERM)
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

/// A real web server (Debian's nginx or lighttpd) in the foreground with its own temporary
/// directory for config, pid and error log; stopped by `stop()` or when released.
final class WebServerProcess {
    let dir: String
    let port: UInt16
    let errorLogPath: String
    private var process: SpawnedProcess?

    private init(prefix: String, port: UInt16, errorLog: String = "error.log", executable: String,
                 arguments: (String) -> [String], config: (String) throws -> Void) throws {
        self.port = port
        dir = makeTempDir(prefix)
        errorLogPath = errorLog.hasPrefix("/") ? errorLog : dir + "/" + errorLog
        try config(dir)
        process = try SpawnedProcess(executable, arguments(dir))
        guard waitForPort(port) else {
            stop()
            throw TestClient.Failure(description: "\(executable) did not start: \(errorLog)")
        }
    }

    var errorLog: String { (try? String(contentsOfFile: errorLogPath, encoding: .utf8)) ?? "" }

    func stop() { process?.stop() }

    deinit { stop() }

    /// nginx with `serverBlocks` inside `http { }` (they may include `fastcgi_params`).
    static func nginx(serverBlocks: String, port: UInt16) throws -> WebServerProcess {
        try WebServerProcess(prefix: "needletail-nginx", port: port, executable: "/usr/sbin/nginx",
                             arguments: { ["-p", $0, "-c", $0 + "/nginx.conf"] }) { dir in
            try FileManager.default.copyItem(atPath: "/etc/nginx/fastcgi_params", toPath: dir + "/fastcgi_params")
            let user = getuid() == 0 ? "user root;" : ""
            try """
            \(user)
            worker_processes 1;
            daemon off;
            pid \(dir)/nginx.pid;
            error_log \(dir)/error.log warn;
            events { worker_connections 4096; }
            http {
                access_log off;
                client_body_temp_path \(dir)/body;
                fastcgi_temp_path \(dir)/fastcgi;
                proxy_temp_path \(dir)/proxy;
                uwsgi_temp_path \(dir)/uwsgi;
                scgi_temp_path \(dir)/scgi;
                \(serverBlocks)
            }
            """.write(toFile: dir + "/nginx.conf", atomically: true, encoding: .utf8)
        }
    }

    /// nginx with the shipped `nginx/needletail-unix.conf` on 127.0.0.1:`port`, passing to `sock`.
    static func nginxInFront(of sock: String, port: UInt16) throws -> WebServerProcess {
        try nginx(serverBlocks: try shippedConfig("nginx/needletail-unix.conf", replacing: [
            ("listen 80;", "listen 127.0.0.1:\(port);"), ("listen [::]:80;", ""), ("/run/needletail/app.sock", sock),
        ]), port: port)
    }

    /// Debian's nginx as installed (`layout` holds a copy of its /etc/nginx with the site
    /// `install` added to it the way README says), on 127.0.0.1:`port`.
    static func stockNginx(_ layout: DebianLayout, port: UInt16) throws -> WebServerProcess {
        try WebServerProcess(prefix: "needletail-stock-nginx", port: port, errorLog: layout.path("/var/log/nginx/error.log"),
                             executable: "/usr/sbin/nginx", arguments: { _ in layout.nginxArguments }) { _ in }
    }

    /// Debian's lighttpd as installed, from the copy of its /etc/lighttpd in `layout`.
    static func stockLighttpd(_ layout: DebianLayout, port: UInt16) throws -> WebServerProcess {
        try WebServerProcess(prefix: "needletail-stock-lighttpd", port: port, errorLog: layout.path("/var/log/lighttpd/error.log"),
                             executable: "/usr/sbin/lighttpd", arguments: { _ in ["-D", "-f", layout.path("/etc/lighttpd/lighttpd.conf")] }) { _ in }
    }

    /// lighttpd on 127.0.0.1:`port` with `include` appended to a minimal config.
    static func lighttpd(include: String, port: UInt16) throws -> WebServerProcess {
        try WebServerProcess(prefix: "needletail-lighttpd", port: port, executable: "/usr/sbin/lighttpd",
                             arguments: { ["-D", "-f", $0 + "/lighttpd.conf"] }) { dir in
            try """
            server.document-root = "\(dir)"
            server.port = \(port)
            server.bind = "127.0.0.1"
            server.errorlog = "\(dir)/error.log"
            server.pid-file = "\(dir)/lighttpd.pid"
            \(include)
            """.write(toFile: dir + "/lighttpd.conf", atomically: true, encoding: .utf8)
        }
    }
}
