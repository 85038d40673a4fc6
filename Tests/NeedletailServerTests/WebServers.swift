import Foundation
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

/// A real nginx (from Debian) in the foreground with its own prefix, stopped by `stop()`.
final class NginxProcess {
    let dir: String
    let port: UInt16
    private let process = Process()

    /// `serverBlocks` go inside `http { }`; they include `fastcgi_params` from the prefix.
    init(serverBlocks: String, port: UInt16) throws {
        self.port = port
        dir = makeTempDir("needletail-nginx")
        try FileManager.default.copyItem(atPath: "/etc/nginx/fastcgi_params", toPath: dir + "/fastcgi_params")
        let user = getuid() == 0 ? "user root;" : ""
        let conf = """
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
        """
        try conf.write(toFile: dir + "/nginx.conf", atomically: true, encoding: .utf8)
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/nginx")
        process.arguments = ["-p", dir, "-c", dir + "/nginx.conf"]
        process.standardError = FileHandle.nullDevice
        try process.run()
        guard waitForPort(port) else {
            stop()
            throw TestClient.Failure(description: "nginx did not start: " + ((try? String(contentsOfFile: dir + "/error.log", encoding: .utf8)) ?? ""))
        }
    }

    var errorLog: String { (try? String(contentsOfFile: dir + "/error.log", encoding: .utf8)) ?? "" }

    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
    }

    deinit { stop() }
}

/// A real lighttpd (from Debian) in the foreground, stopped by `stop()`.
final class LighttpdProcess {
    let dir: String
    let port: UInt16
    private let process = Process()

    init(include: String, port: UInt16) throws {
        self.port = port
        dir = makeTempDir("needletail-lighttpd")
        let conf = """
        server.document-root = "\(dir)"
        server.port = \(port)
        server.bind = "127.0.0.1"
        server.errorlog = "\(dir)/error.log"
        server.pid-file = "\(dir)/lighttpd.pid"
        \(include)
        """
        try conf.write(toFile: dir + "/lighttpd.conf", atomically: true, encoding: .utf8)
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/lighttpd")
        process.arguments = ["-D", "-f", dir + "/lighttpd.conf"]
        process.standardError = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        guard waitForPort(port) else {
            stop()
            throw TestClient.Failure(description: "lighttpd did not start: \(errorLog)")
        }
    }

    var errorLog: String { (try? String(contentsOfFile: dir + "/error.log", encoding: .utf8)) ?? "" }

    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
    }

    deinit { stop() }
}
