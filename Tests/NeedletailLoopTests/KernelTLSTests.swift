import CNeedletailLinux
import COpenSSL
import Foundation
import Glibc
import Testing
@testable import NeedletailLoop

/// kTLS where the kernel offers it. This machine's kernel lists no `tls` ULP, so here the tests
/// prove the check and that a connection asked to use kTLS goes on in user space; on a kernel
/// with the module loaded, the same test sees the kernel take the records.
@Suite struct KernelTLSTests {
    @Test func kTLSIsAskedForWhereTheKernelListsTheTLSULP() throws {
        let listed = (try? String(contentsOfFile: "/proc/sys/net/ipv4/tcp_available_ulp", encoding: .utf8)) ?? ""
        #expect(TLSContext.kernelOffersTLS == listed.split(whereSeparator: \.isWhitespace).contains("tls"), "ULPs: \(listed)")
        let (cert, key) = try Self.identity()
        defer {
            unlink(cert)
            unlink(key)
        }
        #expect(try TLSContext(certificateFile: cert, keyFile: key).kernelTLS == TLSContext.kernelOffersTLS)
    }

    /// A TLS 1.3 connection over loopback TCP, with kTLS asked for and not: the handshake, bytes
    /// each way, and the kernel carrying the records exactly when it offers kTLS.
    @Test(arguments: [false, true]) func aConnectionServesWithKernelTLSAskedForOrNot(asked: Bool) throws {
        let (cert, key) = try Self.identity()
        defer {
            unlink(cert)
            unlink(key)
        }
        let context = try TLSContext(
            certificates: [TLSCertificate(certificateFile: cert, keyFile: key)], kernelTLS: asked)
        let (server, client) = try Self.tcpPair()
        defer {
            close(server)
            close(client)
        }
        guard let stream = TLSStream(context: context, fd: server), let clientContext = nt_tls_test_client_context(),
            let peer = nt_tls_test_client(clientContext, client)
        else { throw TLSError("cannot make the TLS pair") }
        defer {
            SSL_free(peer)
            SSL_CTX_free(clientContext)
        }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 65536, alignment: 16)
        defer { buffer.deallocate() }
        var shaken = false
        for _ in 0..<200 where !shaken {
            let c = nt_tls_test_handshake(peer)
            #expect(c >= 0)
            _ = stream.read(buffer, 65536)
            shaken = c == 1 && nt_tls_handshake_done(stream.ssl) == 1
            if !shaken { usleep(1_000) }
        }
        #expect(shaken)
        // The client's bytes reach the server's plaintext.
        let ping = Array("ping over TLS".utf8)
        #expect(nt_tls_write(peer, ping, Int32(ping.count)) == Int32(ping.count))
        var got: [UInt8] = []
        for _ in 0..<200 where got.count < ping.count {
            let n = stream.read(buffer, 65536)
            if n > 0 { got += UnsafeRawBufferPointer(start: buffer, count: n) } else { usleep(1_000) }
        }
        #expect(got == ping)
        // The server's bytes, through its stage (as the output queue writes), reach the client.
        let pong = Array("pong over TLS".utf8)
        pong.withUnsafeBytes { stream.stageBuffer().copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        stream.staged = pong.count
        var written = 0
        for _ in 0..<200 where written < pong.count {
            if case .took(let n) = stream.writeStaged() { written += n } else { usleep(1_000) }
        }
        #expect(written == pong.count)
        var back: [UInt8] = []
        for _ in 0..<200 where back.count < pong.count {
            let n = nt_tls_read(peer, buffer, 65536)
            if n > 0 { back += UnsafeRawBufferPointer(start: buffer, count: Int(n)) } else { usleep(1_000) }
        }
        #expect(back == pong)
        #expect(stream.kernelTLS.send == (asked && TLSContext.kernelOffersTLS), "\(stream.negotiated)")
        #expect(stream.negotiated.hasSuffix(", kTLS") == stream.kernelTLS.send)
    }

    static func identity() throws -> (String, String) {
        let base = NSTemporaryDirectory() + "needletail-ktls-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let cert = base + "-cert.pem", key = base + "-key.pem"
        guard nt_tls_test_identity(cert, key) == 1 else { throw TLSError("cannot write a test identity") }
        return (cert, key)
    }

    /// A connected loopback TCP pair, both ends non-blocking (kTLS is a TCP ULP).
    static func tcpPair() throws -> (server: Int32, client: Int32) {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, length) == 0 && listen(listener, 1) == 0 && getsockname(listener, $0, &length) == 0
            }
        }
        guard bound else { throw TLSError("cannot listen on loopback") }
        let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, length) == 0 }
        }
        let server = accept(listener, nil, nil)
        guard connected, server >= 0 else { throw TLSError("cannot connect on loopback") }
        for fd in [server, client] { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        return (server, client)
    }
}
