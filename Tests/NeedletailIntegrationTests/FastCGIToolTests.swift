import Foundation
import Glibc
import Testing
import NeedletailTestSupport
@testable import NeedletailServer

/// The demo behind Debian's FastCGI tools: spawn-fcgi starts it, cgi-fcgi (libfcgi) talks to it.
@Suite("FastCGI tools", .serialized)
struct FastCGIToolTests {
    @Test(.enabled(if: toolAvailable("spawn-fcgi") && toolAvailable("cgi-fcgi")))
    func spawnFcgiHandsTheSocketOnFd0() throws {
        let port = freePort()
        let spawner = try SpawnedProcess(
            "/usr/bin/spawn-fcgi", ["-n", "-a", "127.0.0.1", "-p", "\(port)", "--", demoBinary(), "--loops", "1"])
        defer { spawner.stop() }
        #expect(waitForPort(port))
        let get = try runWithEnvironment(
            "cgi-fcgi", ["-bind", "-connect", "127.0.0.1:\(port)"],
            env: ["REQUEST_METHOD": "GET", "REQUEST_URI": "/hello?name=spawned"])
        #expect(get.output.hasSuffix("<h1>Hello spawned</h1>"))
    }

    @Test(.enabled(if: toolAvailable("cgi-fcgi")))
    func cgiFcgiOverTCPAndUnixSocket() throws {
        let path = "/tmp/needletail-fcgi-\(getpid()).sock"
        try withFastCGI(unixPath: path) { server, tcp in
            for target in ["\(tcp)", path] {
                let get = try runWithEnvironment(
                    "cgi-fcgi", ["-bind", "-connect", target],
                    env: [
                        "REQUEST_METHOD": "GET", "SCRIPT_NAME": "/hello", "REQUEST_URI": "/hello?name=%3Cx%3E",
                        "QUERY_STRING": "name=%3Cx%3E",
                    ])
                #expect(get.output.contains("Status: 200 OK"))
                #expect(get.output.hasSuffix("<h1>Hello &lt;x&gt;</h1>"))
                let post = try runWithEnvironment(
                    "cgi-fcgi", ["-bind", "-connect", target],
                    env: ["REQUEST_METHOD": "POST", "REQUEST_URI": "/echo", "CONTENT_LENGTH": "11"],
                    stdin: "hello world")
                #expect(post.output.hasSuffix("\r\n\r\nhello world"))
            }
        }
    }
}

/// Runs a program with exactly `env` as its environment (cgi-fcgi sends its whole environment).
func runWithEnvironment(
    _ program: String, _ arguments: [String], env: [String: String], stdin: String? = nil
) throws -> (status: Int32, output: String) {
    try run(program, arguments, environment: env, input: stdin ?? "")
}
