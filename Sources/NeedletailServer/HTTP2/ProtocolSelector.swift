import NeedletailLoop

/// The handler of a TLS connection until its first decrypted bytes: by then the handshake has
/// chosen the protocol (ALPN), and the connection goes to `HTTP2Connection` for `h2`, to
/// `HTTPConnection` otherwise. Plain listeners never pay for it.
final class ProtocolSelector: ConnectionHandler {
    let context: LoopContext
    init(context: LoopContext) { self.context = context }

    private func chosen(_ connection: Connection) -> any ConnectionHandler {
        let handler: any ConnectionHandler =
            connection.negotiatedProtocol == "h2"
            ? HTTP2Connection(context: context, connection: connection) : HTTPConnection(context: context)
        connection.handler = handler
        return handler
    }

    func received(_ bytes: UnsafeRawBufferPointer, on connection: Connection) -> Int {
        chosen(connection).received(bytes, on: connection)
    }

    func peerClosed(_ connection: Connection) { connection.close() }
    func timedOut(_ connection: Connection) { connection.close() }
    func shutdownRequested(_ connection: Connection) -> Bool { true }
    func closed(_ connection: Connection) {}
}
