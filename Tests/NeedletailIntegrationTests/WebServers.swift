import NeedletailTestSupport
import Foundation
import CNeedletailLinux
import Glibc
import NeedletailLoop

/// A real web server (Debian's nginx or lighttpd) in the foreground with its own temporary
/// directory for config, pid and error log; stopped by `stop()` or when released.
final class WebServerProcess {
    let dir: String
    let port: UInt16
    let errorLogPath: String
    private var process: SpawnedProcess?

    private init(
        prefix: String, port: UInt16, errorLog: String = "error.log", executable: String,
        arguments: (String) -> [String], config: (String) throws -> Void
    ) throws {
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
        try WebServerProcess(
            prefix: "needletail-nginx", port: port, executable: "/usr/sbin/nginx",
            arguments: { ["-p", $0, "-c", $0 + "/nginx.conf"] }
        ) { dir in
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
        try nginx(
            serverBlocks: try shippedConfig(
                "nginx/needletail-unix.conf",
                replacing: [
                    ("listen 80;", "listen 127.0.0.1:\(port);"), ("listen [::]:80;", ""), ("/run/needletail/app.sock", sock),
                ]), port: port)
    }

    /// Debian's nginx as installed (`layout` holds a copy of its /etc/nginx with the site
    /// `install` added to it the way README says), on 127.0.0.1:`port`.
    static func stockNginx(_ layout: DebianLayout, port: UInt16) throws -> WebServerProcess {
        try WebServerProcess(
            prefix: "needletail-stock-nginx", port: port, errorLog: layout.path("/var/log/nginx/error.log"),
            executable: "/usr/sbin/nginx", arguments: { _ in layout.nginxArguments }
        ) { _ in }
    }

    /// Debian's lighttpd as installed, from the copy of its /etc/lighttpd in `layout`.
    static func stockLighttpd(_ layout: DebianLayout, port: UInt16) throws -> WebServerProcess {
        try WebServerProcess(
            prefix: "needletail-stock-lighttpd", port: port, errorLog: layout.path("/var/log/lighttpd/error.log"),
            executable: "/usr/sbin/lighttpd", arguments: { _ in ["-D", "-f", layout.path("/etc/lighttpd/lighttpd.conf")] }
        ) { _ in }
    }

    /// lighttpd on 127.0.0.1:`port` with `include` appended to a minimal config.
    static func lighttpd(include: String, port: UInt16) throws -> WebServerProcess {
        try WebServerProcess(
            prefix: "needletail-lighttpd", port: port, executable: "/usr/sbin/lighttpd",
            arguments: { ["-D", "-f", $0 + "/lighttpd.conf"] }
        ) { dir in
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
