import Foundation
import Glibc

/// A PostgreSQL server of its own for a test: `initdb` into a temporary folder, then
/// `postgres` on a free loopback port with its socket in the same folder. As root (CI), both
/// run as the `postgres` user (the server refuses root). The server runs under `timeout`, so
/// it stops by itself even if the test process dies; `stop()` (and deinit) stop it at once
/// and remove the folder.
public final class PostgresServer {
    public let port: UInt16
    public let folder: String
    /// The address it listens on (and pg_isready and psql use).
    public let host: String
    private var process: SpawnedProcess?
    private var command: [String] = []
    private let bin: String

    /// Where Debian puts the server's programs (`/usr/lib/postgresql/<version>/bin`).
    public static var binaries: String? {
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).compactMap(Int.init).sorted()
        guard let v = versions.last else { return nil }
        let bin = "\(root)/\(v)/bin"
        return FileManager.default.isExecutableFile(atPath: bin + "/postgres") ? bin : nil
    }

    /// `postgres://postgres@<host>:<port>/postgres`.
    public var url: String { "postgres://postgres@\(host):\(port)/postgres" }

    /// Makes and starts the server; returns once it accepts connections. `tls`: with a
    /// self-signed certificate made for it (openssl), `ssl=on`.
    /// `namespace`: run it in that network namespace (`ip netns exec`), listening on `host`.
    /// `clients`: a network (CIDR) whose hosts may connect without a password, besides this one.
    public init(
        settings: [String] = [], tls: Bool = false, host: String = "127.0.0.1", port: UInt16? = nil, namespace: String? = nil,
        clients: String? = nil
    ) throws {
        guard let bin = Self.binaries else {
            throw TestClient.Failure(description: "PostgreSQL is not installed (apt-get install postgresql)")
        }
        self.bin = bin
        self.host = host
        folder = makeTempDir("nt-pg")
        self.port = port ?? freePort()
        let asRoot = geteuid() == 0
        // setpriv execs the program itself (no process in between to swallow signals).
        let prefix = asRoot ? ["/usr/bin/setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"] : []
        if asRoot {
            guard let pw = getpwnam("postgres") else {
                throw TestClient.Failure(description: "no postgres user to run the server as")
            }
            chown(folder, pw.pointee.pw_uid, pw.pointee.pw_gid)
        }
        let initdb = try run(
            prefix.first ?? bin + "/initdb",
            Array(prefix.dropFirst()) + (asRoot ? [bin + "/initdb"] : [])
                + ["-D", folder + "/data", "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync", "--locale=C"])
        guard initdb.status == 0 else {
            throw TestClient.Failure(description: "initdb failed: \(initdb.output)")
        }
        if let clients {
            let hba = folder + "/data/pg_hba.conf"
            let lines = ((try? String(contentsOfFile: hba, encoding: .utf8)) ?? "") + "host all all \(clients) trust\n"
            try lines.write(toFile: hba, atomically: false, encoding: .utf8)
        }
        var settings = settings
        if tls {
            let made = try run(
                "/usr/bin/openssl",
                ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-days", "2",
                 "-keyout", folder + "/server.key", "-out", folder + "/server.crt"])
            guard made.status == 0 else { throw TestClient.Failure(description: "openssl: \(made.output)") }
            chmod(folder + "/server.key", 0o600)
            if asRoot, let pw = getpwnam("postgres") {
                for f in ["/server.key", "/server.crt"] { chown(folder + f, pw.pointee.pw_uid, pw.pointee.pw_gid) }
            }
            settings += ["ssl=on", "ssl_cert_file=\(folder)/server.crt", "ssl_key_file=\(folder)/server.key"]
        }
        // fsync off: the tests check the client, not the disk. SIGINT (fast shutdown) from
        // timeout after 15 minutes at the latest.
        command =
            (namespace.map { ["/usr/sbin/ip", "netns", "exec", $0] } ?? []) + prefix
            + ["/usr/bin/timeout", "-s", "INT", "-k", "30", "900", bin + "/postgres", "-D", folder + "/data", "-k", folder,
            "-p", String(self.port), "-c", "listen_addresses=\(host)", "-c", "fsync=off", "-c", "synchronous_commit=off",
            "-c", "full_page_writes=off", "-c", "max_connections=200"] + settings.flatMap { ["-c", $0] }
        try start()
    }

    /// Starts the server (again, after `stop(keepingData: true)`); returns once it accepts.
    public func start() throws {
        process = try SpawnedProcess(command[0], Array(command.dropFirst()))
        // Accepting is not ready ("the database system is starting up"): ask pg_isready.
        let end = monotonicSeconds() + 30
        while (try? run(bin + "/pg_isready", ["-q", "-h", host, "-p", String(port)]))?.status != 0 {
            guard monotonicSeconds() < end, process?.isRunning == true else {
                stop()
                throw TestClient.Failure(description: "PostgreSQL did not start on port \(port)")
            }
            usleep(50_000)
        }
    }

    /// Runs `sql` with psql as the postgres user (for set-up and checks outside the client).
    @discardableResult
    public func psql(_ sql: String) throws -> String {
        guard let bin = Self.binaries else { throw TestClient.Failure(description: "no psql") }
        let r = try run(bin + "/psql", ["-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-h", host, "-p", String(port), "-U", "postgres", "-c", sql])
        guard r.status == 0 else { throw TestClient.Failure(description: "psql: \(r.output)") }
        return r.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Stops the server (fast shutdown: sessions are ended) and removes its folder, unless
    /// `keepingData` (to `start()` it again).
    public func stop(keepingData: Bool = false) {
        process?.stop(grace: 10, signal: SIGINT)
        process = nil
        if !keepingData { try? FileManager.default.removeItem(atPath: folder) }
    }

    deinit { stop() }
}
