import Glibc
import NeedletailLoop

/// The handler of a connection until its first bytes tell which protocol it speaks: on a TLS
/// connection the handshake has chosen it by then (ALPN `h2`), on a plain one with h2c by prior
/// knowledge the client's first bytes are HTTP/2's preface or they are not. The connection then
/// goes to `HTTP2Connection` or `HTTPConnection` for good. Listeners without HTTP/2 never pay
/// for it.
final class ProtocolSelector: ConnectionHandler {
    let context: LoopContext
    init(context: LoopContext) { self.context = context }

    /// The client connection preface (RFC 9113 3.4).
    static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    func received(_ bytes: UnsafeRawBufferPointer, on connection: Connection) -> Int {
        let http2: Bool
        if let alpn = connection.negotiatedProtocol {
            http2 = alpn == "h2"
        } else {
            let n = min(bytes.count, Self.preface.count)
            let matches = Self.preface.withUnsafeBytes { p in memcmp(p.baseAddress!, bytes.baseAddress!, n) == 0 }
            // Part of the preface so far: wait for the rest (the header timeout still runs).
            if matches && n < Self.preface.count { return 0 }
            http2 = matches
        }
        let handler: any ConnectionHandler =
            http2 ? HTTP2Connection(context: context, connection: connection) : HTTPConnection(context: context)
        connection.handler = handler
        return handler.received(bytes, on: connection)
    }

    func peerClosed(_ connection: Connection) { connection.close() }
    func timedOut(_ connection: Connection) { connection.close() }
    func shutdownRequested(_ connection: Connection) -> Bool { true }
    func closed(_ connection: Connection) {}
}
