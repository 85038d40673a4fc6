import NeedletailTestSupport
import Foundation
import Glibc

/// A stand-in for a Debian machine's file system under a temporary folder: the installed
/// /etc/nginx or /etc/lighttpd copied as they are (Debian's default site enabled, its
/// nginx.conf, fastcgi_params, conf-available…), with every system path they and the shipped
/// files name (/etc/…, /run/…, /var/log/…, /var/lib/needletail, /usr/local/bin) moved under the
/// folder, so that the README's install steps can be followed in it literally.
///
/// What differs from the machine, and why: port 80 becomes a free port on 127.0.0.1 (tests
/// listen on loopback only; IPv6 listens are dropped for the same reason), nginx gets its
/// temporary folders under the root (`conf.d/zz-test-paths.conf`: its compiled-in defaults are
/// in /var/lib/nginx), and it runs in the foreground.
struct DebianLayout {
    /// The stand-in for `/`.
    let root: String
    let port: UInt16

    /// System paths that move under the root.
    static let moved = ["/etc/nginx", "/etc/lighttpd", "/run/", "/var/log/", "/var/lib/needletail", "/usr/local/bin/"]

    init(copying config: String, port: UInt16) throws {
        root = makeTempDir("needletail-debian")
        self.port = port
        for folder in ["/etc", "/run", "/var/log", "/var/lib", "/usr/local/bin"] {
            try FileManager.default.createDirectory(atPath: root + folder, withIntermediateDirectories: true)
        }
        let copy = root + config
        let r = try run("/bin/cp", ["-a", config, copy])
        guard r.status == 0 else { throw TestClient.Failure(description: "cp \(config): \(r.output)") }
        try adapt(copy)
    }

    /// `systemPath` (e.g. /run/needletail) inside the stand-in.
    func path(_ systemPath: String) -> String { root + systemPath }

    /// The uid and gid of www-data, when this test runs as root (else nil: everything runs as
    /// the test's user and the servers' `user` settings are ignored).
    static let wwwData: (uid: uid_t, gid: gid_t)? = {
        guard getuid() == 0, let pw = getpwnam("www-data") else { return nil }
        return (pw.pointee.pw_uid, pw.pointee.pw_gid)
    }()

    /// `install -d -o www-data -g www-data PATH`, in the stand-in.
    func makeFolderForWWWData(_ systemPath: String) throws {
        try FileManager.default.createDirectory(atPath: path(systemPath), withIntermediateDirectories: true)
        if let w = Self.wwwData { chown(path(systemPath), w.uid, w.gid) }
    }

    /// `install BINARY /usr/local/bin/`: the demo, where the shipped files expect it.
    func installDemo() throws {
        let target = path("/usr/local/bin/needletail-demo")
        try? FileManager.default.removeItem(atPath: target)
        try FileManager.default.copyItem(atPath: demoBinary(), toPath: target)
        chmod(target, 0o755)
    }

    /// `cp SHIPPED TARGET` with the shipped file's system paths moved into the stand-in and
    /// port 80 moved to the test's port, as for the stock files (and `replacing` applied: an
    /// upstream's port, say).
    func installShipped(_ relative: String, as systemPath: String, replacing: [(String, String)] = []) throws {
        try shippedConfig(relative, replacing: replacing).write(toFile: path(systemPath), atomically: true, encoding: .utf8)
        try adapt(path(systemPath))
    }

    /// `ln -s TARGET LINK`.
    func link(_ target: String, at systemPath: String) throws {
        try FileManager.default.createSymbolicLink(atPath: path(systemPath), withDestinationPath: target)
    }

    /// The app as README starts it: as www-data (runuser) when the test runs as root.
    func startDemo(_ arguments: [String]) throws -> SpawnedProcess {
        let binary = path("/usr/local/bin/needletail-demo")
        if Self.wwwData != nil {
            return try SpawnedProcess("/usr/sbin/runuser", ["-u", "www-data", "--", binary] + arguments)
        }
        return try SpawnedProcess(binary, arguments)
    }

    /// nginx's command line for this copy: its nginx.conf, error log and the foreground.
    var nginxArguments: [String] {
        ["-e", path("/var/log/nginx/error.log"), "-c", path("/etc/nginx/nginx.conf"), "-g", "daemon off;"]
    }

    /// Moves the system paths of the file or folder at `path` under the root, and port 80 to
    /// the test's port; absolute symbolic links into moved folders are re-pointed.
    private func adapt(_ path: String) throws {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else { return }
        if isFolder.boolValue {
            for name in try FileManager.default.contentsOfDirectory(atPath: path) {
                let entry = path + "/" + name
                if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: entry) {
                    if Self.moved.contains(where: { target.hasPrefix($0) }) {
                        try FileManager.default.removeItem(atPath: entry)
                        try FileManager.default.createSymbolicLink(atPath: entry, withDestinationPath: root + target)
                    }
                    continue
                }
                try adapt(entry)
            }
            if path.hasSuffix("/etc/nginx") {
                try """
                # Added by the test (not Debian's): nginx's temporary folders under the stand-in root.
                client_body_temp_path \(root)/var/lib/nginx/body;
                fastcgi_temp_path \(root)/var/lib/nginx/fastcgi;
                proxy_temp_path \(root)/var/lib/nginx/proxy;
                uwsgi_temp_path \(root)/var/lib/nginx/uwsgi;
                scgi_temp_path \(root)/var/lib/nginx/scgi;
                """.write(toFile: path + "/conf.d/zz-test-paths.conf", atomically: true, encoding: .utf8)
                try FileManager.default.createDirectory(atPath: root + "/var/lib/nginx", withIntermediateDirectories: true)
                try FileManager.default.createDirectory(atPath: root + "/var/log/nginx", withIntermediateDirectories: true)
            }
            if path.hasSuffix("/etc/lighttpd") {
                for folder in ["/var/log/lighttpd", "/var/cache/lighttpd/uploads", "/run/lighttpd"] {
                    try makeFolderForWWWData(folder)
                }
            }
            return
        }
        guard var text = try? String(contentsOfFile: path, encoding: .utf8) else { return }
        let original = text
        for prefix in Self.moved {
            text = text.replacingOccurrences(of: "\"" + prefix, with: "\"" + root + prefix)
            text = text.replacingOccurrences(of: " " + prefix, with: " " + root + prefix)
            text = text.replacingOccurrences(of: "unix:" + prefix, with: "unix:" + root + prefix)
        }
        // nginx: `listen 80` (with or without default_server) on the test's loopback port;
        // IPv6 listens dropped.
        text = text.replacingOccurrences(of: #"listen\s+\[::\]:80[^;]*;"#, with: "", options: .regularExpression)
        text = text.replacingOccurrences(of: #"listen\s+80\b"#, with: "listen 127.0.0.1:\(port)", options: .regularExpression)
        // lighttpd: server.port on the test's port, bound to loopback; its IPv6 helper (which
        // listens on every IPv6 address) left out.
        text = text.replacingOccurrences(
            of: #"server\.port\s*=\s*80\b"#,
            with: "server.port = \(port)\nserver.bind = \"127.0.0.1\"", options: .regularExpression)
        text = text.replacingOccurrences(
            of: #"include_shell "/usr/share/lighttpd/use-ipv6.pl[^\n]*"#, with: "", options: .regularExpression)
        if text != original { try text.write(toFile: path, atomically: true, encoding: .utf8) }
    }
}
