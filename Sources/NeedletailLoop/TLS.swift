import COpenSSL
import Glibc
import Synchronization

/// Why a TLS context could not be made: which file and what is wrong with it.
public struct TLSError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A certificate chain (PEM, leaf first), its private key (PEM), and optionally an OCSP
/// response to staple (DER, as `openssl ocsp -respout` writes it; nginx's
/// `ssl_stapling_file`).
public struct TLSCertificate: Sendable, Equatable, CustomStringConvertible {
    public var certificateFile: String
    public var keyFile: String
    /// Sent to clients that ask for the certificate's status (status_request), while it is
    /// current. Read with the certificate (and again on reload): it must be a successful,
    /// signed response about this certificate (its issuer the next certificate in the chain
    /// file, or itself), saying "good", and not past its next update. Refresh the file before
    /// then and reload (SIGHUP); past its next update it is no longer sent.
    public var ocspResponseFile: String?
    public init(certificateFile: String, keyFile: String, ocspResponseFile: String? = nil) {
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.ocspResponseFile = ocspResponseFile
    }
    public var description: String {
        "certificate \(certificateFile), key \(keyFile)" + (ocspResponseFile.map { ", OCSP response \($0)" } ?? "")
    }
}

/// The certificates of an HTTPS listener and the TLS settings of every connection it accepts
/// (OpenSSL 3): TLS 1.2 and 1.3 only, Mozilla's "intermediate" cipher list, no compression, no
/// renegotiation, session resumption by tickets and by the session cache, ALPN `http/1.1`.
/// The first certificate is the default; the others are chosen by the name the client asks
/// for (SNI), matched against each certificate's names. `reload()` re-reads the files (what
/// SIGHUP does): connections accepted from then on use the new ones, connections open keep
/// theirs. Made once per listener and shared by its loops.
public final class TLSContext: @unchecked Sendable, Equatable, CustomStringConvertible {
    struct Pointer: @unchecked Sendable { let raw: OpaquePointer }
    /// The default context (owning the SNI ones); replaced whole by a reload.
    private let current: Mutex<Pointer>
    /// The files, in the order given.
    public let certificates: [TLSCertificate]
    /// Seconds a session-ticket key is the one new tickets get (tickets made with the key
    /// before are still accepted, and replaced, for as long again).
    public let ticketKeyLifetime: Int
    /// Whether ALPN offers HTTP/2 (`h2`) before HTTP/1.1.
    public let http2: Bool
    /// Session-ticket keys shared with other servers (nginx's `ssl_session_ticket_key`): files
    /// of 80 random bytes (`openssl rand 80`); new tickets get the first, the others are still
    /// accepted. Empty: keys made here and rotated every `ticketKeyLifetime`.
    public let ticketKeyFiles: [String]
    /// Whether OpenSSL is asked to hand each connection's records to the kernel after the
    /// handshake (kTLS: the kernel encrypts what the connection writes; OpenSSL goes on in
    /// user space for a cipher the kernel does not take).
    public let kernelTLS: Bool

    /// Whether this kernel offers kTLS (`tls` in /proc/sys/net/ipv4/tcp_available_ulp).
    public static let kernelOffersTLS: Bool = nt_tls_kernel_offers_ktls() == 1

    /// Reads the certificate chains and keys now; an error says which file and why. Ticket
    /// keys rotate every `ticketKeyLifetime` seconds (12 hours: a ticket resumes for at most
    /// a day, as Mozilla advises; a reload makes new keys). `kernelTLS`: nil asks for kTLS where
    /// the kernel offers it (`kernelOffersTLS`).
    public init(
        certificates: [TLSCertificate], ticketKeyLifetime: Int = 12 * 3600, ticketKeyFiles: [String] = [], http2: Bool = false,
        kernelTLS: Bool? = nil
    ) throws(TLSError) {
        guard !certificates.isEmpty else { throw TLSError("no certificate given") }
        self.certificates = certificates
        self.ticketKeyLifetime = max(1, ticketKeyLifetime)
        self.ticketKeyFiles = ticketKeyFiles
        self.http2 = http2
        self.kernelTLS = kernelTLS ?? TLSContext.kernelOffersTLS
        current = Mutex(
            try TLSContext.make(
                certificates, ticketKeyLifetime: self.ticketKeyLifetime, ticketKeyFiles: ticketKeyFiles, http2: http2,
                kernelTLS: self.kernelTLS))
    }

    /// One certificate and its key.
    public convenience init(certificateFile: String, keyFile: String) throws(TLSError) {
        try self.init(certificates: [TLSCertificate(certificateFile: certificateFile, keyFile: keyFile)])
    }

    /// The contexts for these files, read now.
    private static func make(
        _ certificates: [TLSCertificate], ticketKeyLifetime: Int, ticketKeyFiles: [String], http2: Bool, kernelTLS: Bool
    ) throws(TLSError) -> Pointer {
        var message = [CChar](repeating: 0, count: 1024)
        let made: OpaquePointer? = withCStrings(certificates.map(\.certificateFile)) { certs in
            withCStrings(certificates.map(\.keyFile)) { keys in
                withCStrings(certificates.map(\.ocspResponseFile)) { ocsps in
                    withCStrings(ticketKeyFiles) { tickets in
                        nt_tls_server_set(
                            certs, keys, ocsps, Int32(certificates.count), ticketKeyLifetime, tickets, Int32(ticketKeyFiles.count),
                            http2 ? 1 : 0, kernelTLS ? 1 : 0, &message, message.count)
                    }
                }
            }
        }
        guard let made else {
            throw TLSError(String(nulTerminated: message))
        }
        return Pointer(raw: made)
    }

    /// Reads the files again and uses them for the connections accepted from now on; on an
    /// error (which names the file) the certificates in use stay.
    public func reload() throws(TLSError) {
        let fresh = try TLSContext.make(
            certificates, ticketKeyLifetime: ticketKeyLifetime, ticketKeyFiles: ticketKeyFiles, http2: http2, kernelTLS: kernelTLS)
        let old = current.withLock { p in
            let o = p
            p = fresh
            return o
        }
        // Connections made from the old context hold references to it (OpenSSL counts them).
        SSL_CTX_free(old.raw)
    }

    /// A new connection's TLS state over `fd`, from the context in use now.
    func newConnection(fd: Int32) -> OpaquePointer? {
        current.withLock { p in nt_tls_new(p.raw, fd).map { Pointer(raw: $0) } }?.raw
    }

    deinit { current.withLock { SSL_CTX_free($0.raw) } }

    public static func == (a: TLSContext, b: TLSContext) -> Bool { a === b }

    public var description: String { "TLS (" + certificates.map(\.description).joined(separator: "; ") + ")" }
}

/// Calls `body` with a C array of C strings, NULL for nil (valid during the call).
private func withCStrings<R>(_ strings: [String?], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> R) -> R {
    let copies = strings.map { $0.map { strdup($0) } ?? nil }
    defer { copies.forEach { free($0) } }
    // NULL-terminated, so that even an empty list has an address.
    let pointers = copies.map { UnsafePointer($0) } + [nil]
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}

/// One connection's TLS state: OpenSSL's record layer over the socket (its socket BIO), driven
/// by the loop's readiness events, and the plain bytes staged for the record being written.
///
/// OpenSSL reads ahead (one read(2) per record instead of two), so bytes may wait inside it
/// that epoll does not report: `hasPending` says so, and the loop reads on before it waits
/// (`EventLoop.readPendingTLS`).
final class TLSStream {
    let ssl: OpaquePointer
    /// Plain bytes copied from the output queue for one `SSL_write` (at most a record), kept
    /// until OpenSSL has taken all of them: after a want, the same bytes are offered again.
    private(set) var stage: UnsafeMutableRawPointer?
    /// Bytes staged, and how many of them OpenSSL has taken.
    var staged = 0
    var taken = 0
    /// A read could not go on until the socket is writable (the handshake's answer did not fit).
    var readWantsWrite = false
    /// On the loop's list of connections to read again before it waits.
    var queuedForPending = false

    /// The last read wanted more from the socket: what OpenSSL holds (if anything) is part of
    /// a record, and epoll tells when the rest comes.
    private var starved = false

    /// Whether input waits inside OpenSSL (read from the socket, not yet returned) that a read
    /// can use without the socket.
    var hasPending: Bool { !starved && nt_tls_pending(ssl) != 0 }

    static let recordSize = 16 * 1024

    init?(context: TLSContext, fd: Int32) {
        guard let s = context.newConnection(fd: fd) else { return nil }
        ssl = s
    }

    deinit {
        nt_tls_close(ssl)
        stage?.deallocate()
    }

    /// Like read(2): decrypted bytes, 0 when the peer closed, or -1 with errno EAGAIN (wait for
    /// the socket; `readWantsWrite` says which way) or ECONNRESET (the handshake or a record failed).
    func read(_ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
        let r = nt_tls_read(ssl, buffer, Int32(clamping: count))
        starved = false
        if r >= 0 { return Int(r) }
        switch r {
        case Int32(NT_TLS_WANT_READ):
            starved = true
            errno = EAGAIN
        case Int32(NT_TLS_WANT_WRITE):
            readWantsWrite = true
            errno = EAGAIN
        default:
            var text = [CChar](repeating: 0, count: 256)
            sentPlainHTTP = nt_tls_error_text(&text, text.count) == 1
            failure = String(nulTerminated: text)
            errno = ECONNRESET
        }
        return -1
    }

    /// Why the last read failed (OpenSSL's reason), for the log.
    private(set) var failure: String?
    /// The failure was a plain HTTP request to this TLS port.
    private(set) var sentPlainHTTP = false

    /// The stage's memory, made on first use.
    func stageBuffer() -> UnsafeMutableRawPointer {
        if let s = stage { return s }
        let s = UnsafeMutableRawPointer.allocate(byteCount: TLSStream.recordSize, alignment: 16)
        stage = s
        return s
    }

    enum Written {
        case took(Int)
        case wouldBlock
        case failed
    }

    /// Offers the staged bytes not yet taken to OpenSSL.
    func writeStaged() -> Written {
        guard let s = stage, taken < staged else { return .took(0) }
        let r = nt_tls_write(ssl, s + taken, Int32(staged - taken))
        if r > 0 {
            taken += Int(r)
            if taken == staged {
                staged = 0
                taken = 0
            }
            return .took(Int(r))
        }
        if r == Int32(NT_TLS_WANT_READ) || r == Int32(NT_TLS_WANT_WRITE) { return .wouldBlock }
        return .failed
    }

    /// The protocol ALPN chose ("h2", "http/1.1"; "" when the client asked for none).
    var alpn: String {
        var out = [CChar](repeating: 0, count: 32)
        nt_tls_alpn_selected(ssl, &out, out.count)
        return String(nulTerminated: out)
    }

    /// Sends close_notify (before the write side is shut).
    func notifyClose() { nt_tls_notify_close(ssl) }

    /// The protocol version and cipher agreed on ("TLSv1.3 TLS_AES_256_GCM_SHA384"), and
    /// ", kTLS" when the kernel encrypts the records.
    var negotiated: String {
        String(cString: nt_tls_version(ssl)) + " " + String(cString: nt_tls_cipher(ssl)) + (kernelTLS.send ? ", kTLS" : "")
    }

    /// Whether the kernel encrypts what this connection writes (send) and decrypts what it
    /// reads (receive), after the handshake.
    var kernelTLS: (send: Bool, receive: Bool) { (nt_tls_ktls_send(ssl) == 1, nt_tls_ktls_receive(ssl) == 1) }
}
