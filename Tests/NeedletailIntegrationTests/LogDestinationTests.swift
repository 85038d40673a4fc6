import NeedletailTestSupport
import Foundation
import Glibc
import Testing
import NeedletailServer

/// A unix datagram socket bound at `path`, standing in for syslog's /dev/log.
final class DatagramListener {
    let fd: Int32
    let path: String

    init(path: String) throws {
        self.path = path
        unlink(path)
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            let bytes = Array(path.utf8)
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else { throw TestClient.Failure(description: "bind \(path): \(String(cString: strerror(errno)))") }
        chmod(path, 0o666)
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit {
        close(fd)
        unlink(path)
    }

    /// Datagrams received within `seconds` until one contains `text`.
    func receive(until text: String, seconds: Double = 10) -> [String] {
        var got: [String] = []
        let end = monotonicSeconds() + seconds
        var buffer = [UInt8](repeating: 0, count: 4096)
        while monotonicSeconds() < end {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n > 0 {
                got.append(String(decoding: buffer[..<n], as: UTF8.self))
                if got.last!.contains(text) { break }
            }
        }
        return got
    }
}

@Suite("Where the log goes", .serialized)
struct LogDestinationTests {
    @Test func parsesTheCommandLineForms() {
        #expect(LogDestination(parsing: "stderr") == .standardError)
        #expect(LogDestination(parsing: "syslog") == .syslog(socket: "/dev/log"))
        #expect(LogDestination(parsing: "syslog:/run/x.sock") == .syslog(socket: "/run/x.sock"))
        #expect(LogDestination(parsing: "/var/log/app.log") == .file("/var/log/app.log"))
    }

    @Test func linesGoToASyslogSocketWithTheirSeverity() throws {
        let dir = makeTempDir("needletail-syslog")
        let listener = try DatagramListener(path: dir + "/log.sock")
        let port = freePort()
        let app = try SpawnedProcess(
            demoBinary(), ["serve", "--http", "127.0.0.1:\(port)", "--data", dir, "--log-file", "syslog:" + listener.path])
        defer { app.stop() }
        let lines = listener.receive(until: "listening on")
        let line = lines.first { $0.contains("listening on") } ?? ""
        // <daemon(3) * 8 + info(6)>, the program's name and pid, no newline.
        #expect(line.hasPrefix("<30>needletail-demo[\(app.pid)]: "), "\(lines)")
        #expect(line.contains("listening on http://127.0.0.1:\(port)") && !line.hasSuffix("\n"), "\(lines)")
    }

    /// A daemon's child whose standard error is /dev/null (as a background lighttpd leaves it)
    /// logs to /dev/log. Runs where the test may stand in for syslog: as root, with no syslog
    /// daemon on /dev/log.
    @Test(.enabled(if: getuid() == 0 && access("/dev/log", F_OK) != 0))
    func aChildWithoutStandardErrorLogsToSyslog() throws {
        let listener = try DatagramListener(path: "/dev/log")
        let dir = makeTempDir("needletail-syslog")
        let port = freePort()
        let app = try SpawnedProcess(demoBinary(), ["serve", "--http", "127.0.0.1:\(port)", "--data", dir])  // stderr: /dev/null
        defer { app.stop() }
        let lines = listener.receive(until: "listening on")
        #expect(lines.contains { $0.hasPrefix("<30>needletail-demo[\(app.pid)]: ") && $0.contains("127.0.0.1:\(port)") }, "\(lines)")
    }

    @Test func aLogFileThatCannotBeOpenedStopsTheStartWithTheReason() throws {
        let r = try run(demoBinary(), ["serve", "--http", "127.0.0.1:\(freePort())", "--log-file", "/nonexistent/folder/app.log"])
        #expect(r.status == 1)
        #expect(r.output.contains("cannot open the log /nonexistent/folder/app.log: No such file or directory"), "\(r.output)")
    }
}
