import CNeedletailLinux
import COpenSSL
import Glibc

/// The TLS layer's fuzz entry point (`needletail-fuzz tls`, docs/SECURITY.md). Not API: reached
/// only with `@_spi(Fuzzing)`.
@_spi(Fuzzing) public enum LoopFuzzing {
    /// The server's identity (written once to a temporary folder) and a client that trusts it.
    nonisolated(unsafe) static let contexts: (server: TLSContext, client: OpaquePointer)? = {
        let dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"
        let cert = "\(dir)/needletail-fuzz-tls-\(getpid())-cert.pem", key = "\(dir)/needletail-fuzz-tls-\(getpid())-key.pem"
        defer {
            unlink(cert)
            unlink(key)
        }
        guard nt_tls_test_identity(cert, key) == 1, let server = try? TLSContext(certificateFile: cert, keyFile: key),
            let client = nt_tls_test_client_context()
        else {
            reportFailure("needletail-fuzz: cannot make the TLS identity or the client context")
            return nil
        }
        return (server, client)
    }()

    static func reportFailure(_ text: String) {
        _ = (text + "\n").withCString { write(2, $0, strlen($0)) }
    }

    /// A TLS connection over a socket pair: the handshake between a client and the server's
    /// `TLSStream`, then `data` after its first byte goes in, as the client's plaintext (first
    /// byte even) or as raw bytes on the wire after the handshake (odd: records no key made).
    /// What the server decrypts is handed to `deliver`; plaintext must come out exactly as sent,
    /// and come back to the client exactly through the output queue's TLS path (a mismatch
    /// stops the process: the fuzzer records it). Returns the number of bytes decrypted.
    public static func tls(_ data: UnsafeRawBufferPointer, deliver: (UnsafeRawBufferPointer) -> Void) -> Int {
        guard let (server, client) = contexts, let mode = data.first else { return 0 }
        let payload = UnsafeRawBufferPointer(rebasing: data[1...])
        var fds: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(NT_SOCK_NONBLOCK), 0, &fds) == 0 else { return 0 }
        defer {
            close(fds[0])
            close(fds[1])
        }
        guard let stream = TLSStream(context: server, fd: fds[0]), let peer = nt_tls_test_client(client, fds[1]) else { return 0 }
        defer { SSL_free(peer) }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 65536, alignment: 16)
        defer { buffer.deallocate() }
        // The handshake, each side stepped in turn (the server's through its reads).
        var shaken = false
        for _ in 0..<64 {
            let c = nt_tls_test_handshake(peer)
            if c < 0 { break }
            _ = stream.read(buffer, 65536)
            if c == 1 && nt_tls_handshake_done(stream.ssl) == 1 {
                shaken = true
                break
            }
        }
        guard shaken else {
            reportFailure("needletail-fuzz: the TLS handshake did not complete")
            abort()
        }
        let plaintext = mode & 1 == 0
        var sent = 0
        while sent < payload.count {
            let n: Int
            if plaintext {
                n = Int(nt_tls_write(peer, payload.baseAddress! + sent, Int32(payload.count - sent)))
            } else {
                n = write(fds[1], payload.baseAddress! + sent, payload.count - sent)
            }
            if n <= 0 { break }
            sent += n
        }
        var received: [UInt8] = []
        while true {
            let r = stream.read(buffer, 65536)
            if r <= 0 { break }
            received.append(contentsOf: UnsafeRawBufferPointer(start: buffer, count: r))
        }
        received.withUnsafeBytes { deliver($0) }
        guard plaintext else { return received.count }
        if received.count != sent || !received.elementsEqual(UnsafeRawBufferPointer(rebasing: payload[0..<sent])) {
            reportFailure("needletail-fuzz: TLS plaintext came out changed (\(received.count) of \(sent) bytes)")
            abort()
        }
        // Back to the client through the output queue: staged, encrypted, read in one piece.
        var queue = OutputQueue()
        received.withUnsafeBytes { queue.append(copying: $0) }
        var echoed: [UInt8] = []
        for _ in 0..<10_000 where echoed.count < received.count {
            if case .failed = queue.write(tls: stream) { break }
            let r = nt_tls_read(peer, buffer, 65536)
            if r > 0 { echoed.append(contentsOf: UnsafeRawBufferPointer(start: buffer, count: Int(r))) }
        }
        if echoed != received {
            reportFailure("needletail-fuzz: TLS output came back changed (\(echoed.count) of \(received.count) bytes)")
            abort()
        }
        return received.count
    }
}
