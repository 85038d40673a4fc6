import CPostgres
import Glibc
import NeedletailLoop
import NeedletailPOSIX

/// A query's answer, handed from the loop to the task that awaits it.
typealias QueryContinuation = UnsafeContinuation<Result<PostgresRows, PostgresError>, Never>

/// A libpq connection owned by one loop: non-blocking, in pipeline mode, its socket watched
/// level-triggered in the loop's epoll. Every query is sent with its own Sync (so each commits
/// on its own) and answered in order from the FIFO of continuations. Loop-confined.
final class PostgresConnection: LoopWatcher, LoopDeferred {
    unowned let loop: EventLoop
    private var conn: OpaquePointer?
    private var watch: LoopWatch?
    private var wantsWrite = false

    /// One entry per Sync sent: what to answer when its results are in.
    private struct Pending {
        let continuation: QueryContinuation?
        /// Told instead of a continuation (the connection's own statements: a listener's LISTEN).
        var callback: ((Result<PostgresRows, PostgresError>) -> Void)? = nil
        /// The statement this entry prepared, forgotten again if the entry fails.
        let preparedKey: String?
    }
    private var pending: [Pending] = []
    private var head = 0
    /// The current entry's answer so far: the last rows, or the first error.
    private var rows: OpaquePointer?
    private var error: PostgresError?

    /// Statements prepared on this connection: their key (SQL and parameter types) → name.
    private var prepared: [String: String] = [:]
    private let maxPrepared = 256
    /// Names are never reused: a statement whose run failed stays prepared on the server.
    private var nextStatement = 0
    /// Results of the current entry so far (its first is the Parse of a statement it prepares).
    private var resultsInEntry = 0
    private var prepareFailed = false

    /// Held by a transaction (no other query is sent on it meanwhile).
    var reserved = false
    private(set) var isBroken = false
    /// Told when the connection breaks or its last pending answer comes in.
    var onIdle: ((PostgresConnection) -> Void)?
    var onBroken: ((PostgresConnection) -> Void)?
    /// The server's notifications (LISTEN), drained after every read.
    var onNotification: ((_ channel: String, _ payload: String) -> Void)?

    var inFlight: Int { pending.count - head }

    /// Takes over a connection that `PostgresConnector.connect` made (call on the loop).
    init(loop: EventLoop, connection: OpaquePointer) throws(PostgresError) {
        self.loop = loop
        self.conn = connection
        let fd = PQsocket(connection)
        do {
            watch = try loop.watch(fd: fd, self)
        } catch {
            PQfinish(connection)
            conn = nil
            isBroken = true
            throw PostgresError(.unavailable, "cannot watch the connection's socket: \(error)")
        }
    }

    deinit { if let conn { PQfinish(conn) } }

    /// The server process serving this connection (its `pg_backend_pid()`).
    var backendPID: Int32 { conn.map { PQbackendPID($0) } ?? 0 }

    // MARK: Sending

    /// Sends `sql` with `parameters` (prepared on first use, then by name) and answers
    /// `continuation` when its results are in.
    func send(_ sql: String, _ parameters: [any PostgresBindable], prepare: Bool = true, _ continuation: QueryContinuation?) {
        guard let conn, !isBroken else {
            continuation?.resume(returning: .failure(PostgresError(.connectionLost, "the connection is closed")))
            return
        }
        let types = parameters.map { type(of: $0).postgresType }
        let texts = parameters.map { $0.postgresText }
        if let bad = texts.firstIndex(where: { $0?.utf8.contains(0) == true }) {
            // PostgreSQL's text cannot hold NUL; a C string would silently end there.
            continuation?.resume(returning: .failure(PostgresError(.client, "parameter $\(bad + 1) holds a NUL character, which PostgreSQL text cannot store (bind the bytes as bytea)")))
            return
        }
        var preparedKey: String? = nil
        let ok: Bool = withCStrings(texts) { values in
            if prepare {
                let key = types.isEmpty ? sql : sql + "\u{0}" + types.map(String.init).joined(separator: ",")
                if let name = prepared[key] {
                    return PQsendQueryPrepared(conn, name, Int32(values.count), values, nil, nil, 0) == 1
                }
                if prepared.count < maxPrepared {
                    let name = "nt\(nextStatement)"
                    nextStatement += 1
                    guard PQsendPrepare(conn, name, sql, Int32(types.count), types) == 1 else { return false }
                    prepared[key] = name
                    preparedKey = key
                    return PQsendQueryPrepared(conn, name, Int32(values.count), values, nil, nil, 0) == 1
                }
            }
            return PQsendQueryParams(conn, sql, Int32(values.count), types, values, nil, nil, 0) == 1
        }
        guard ok, PQpipelineSync(conn) == 1 else {
            let message = lastError()
            if let key = preparedKey { prepared[key] = nil }
            // A send that fails leaves libpq's pipeline in an unknown state: start again.
            continuation?.resume(returning: .failure(PostgresError(.connectionLost, "cannot send: \(message)")))
            breakConnection("cannot send: \(message)")
            return
        }
        pending.append(Pending(continuation: continuation, preparedKey: preparedKey))
        // One write for every query sent in this turn of the loop (pipelined tasks).
        // libpq 15's PQpipelineSync writes at once (PQsendPipelineSync, which does not, is
        // libpq 17's). From the second query of a turn of the loop on, a TCP socket is corked
        // until the turn ends, so the queries of every task that ran in it leave together; a
        // lone query costs no extra system call.
        if !flushScheduled {
            flushScheduled = true
            loop.runBeforeWaiting(self)
        } else if !corked && isTCP {
            corked = true
            setCork(true)
        }
    }

    private var flushScheduled = false
    private var corked = false
    private lazy var isTCP: Bool = {
        guard let conn else { return false }
        var address = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let ok = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(PQsocket(conn), $0, &length) == 0 }
        }
        return ok && (Int32(address.ss_family) == AF_INET || Int32(address.ss_family) == AF_INET6)
    }()

    private func setCork(_ on: Bool) {
        guard let conn else { return }
        var value: Int32 = on ? 1 : 0
        _ = setsockopt(PQsocket(conn), Int32(IPPROTO_TCP), TCP_CORK, &value, socklen_t(MemoryLayout<Int32>.size))
    }

    func runBeforeWaiting() {
        flushScheduled = false
        if corked {
            corked = false
            setCork(false)
        }
        flush()
    }

    /// `send` for code on the loop that is not a task: `answer` is called with the result.
    func send(_ sql: String, _ parameters: [any PostgresBindable], prepare: Bool = true, answer: @escaping (Result<PostgresRows, PostgresError>) -> Void) {
        let before = pending.count
        send(sql, parameters, prepare: prepare, nil)
        if pending.count == before + 1 {
            pending[before].callback = answer
        } else {
            answer(.failure(PostgresError(.connectionLost, isBroken ? "the connection is closed" : "cannot send")))
        }
    }

    /// Pushes libpq's output buffer to the socket; waits for writability while some is left.
    private func flush() {
        guard let conn, !isBroken else { return }
        let r = PQflush(conn)
        if r < 0 {
            breakConnection("cannot write: \(lastError())")
            return
        }
        setWantsWrite(r == 1)
    }

    private func setWantsWrite(_ on: Bool) {
        guard on != wantsWrite, let watch else { return }
        wantsWrite = on
        do { try loop.rewatch(watch, writable: on) } catch { breakConnection("epoll: \(error)") }
    }

    // MARK: Receiving

    func ready(readable: Bool, writable: Bool, failed: Bool) {
        guard let conn, !isBroken else { return }
        if writable { flush() }
        guard readable || failed, !isBroken else { return }
        var rounds = 0
        repeat {
            if PQconsumeInput(conn) == 0 {
                breakConnection(lastError())
                return
            }
            rounds += 1
            // Decrypted bytes can wait in the TLS library while the socket is not readable:
            // read again while TLS is on and answers are still expected.
        } while collectResults() && PQsslInUse(conn) != 0 && inFlight > 0 && rounds < 16
        drainNotifications()
        if PQstatus(conn) == CONNECTION_BAD { breakConnection(lastError()) }
    }

    /// Takes every result libpq has whole; returns whether an entry was answered.
    @discardableResult
    private func collectResults() -> Bool {
        guard let conn else { return false }
        var answered = false
        var nulls = 0
        while inFlight > 0, PQisBusy(conn) == 0, !isBroken {
            guard let r = PQgetResult(conn) else {
                nulls += 1
                if nulls > 1 { break }  // nothing more without new input
                continue
            }
            nulls = 0
            let status = PQresultStatus(r)
            if status == PGRES_FATAL_ERROR && resultsInEntry == 0 && pending[head].preparedKey != nil { prepareFailed = true }
            if status != PGRES_PIPELINE_SYNC { resultsInEntry += 1 }
            switch status {
            case PGRES_PIPELINE_SYNC:
                PQclear(r)
                answer()
                answered = true
            case PGRES_TUPLES_OK, PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
                if let old = rows { PQclear(old) }
                rows = r
            case PGRES_FATAL_ERROR, PGRES_NONFATAL_ERROR:
                if error == nil { error = Self.serverError(r) }
                PQclear(r)
            case PGRES_PIPELINE_ABORTED:
                if error == nil { error = PostgresError(.server, "skipped after an earlier error in the same pipeline segment") }
                PQclear(r)
            default:
                if error == nil { error = PostgresError(.client, "unexpected result \(String(cString: PQresStatus(PQresultStatus(r))))") }
                PQclear(r)
            }
        }
        return answered
    }

    private func answer() {
        let entry = pending[head]
        head += 1
        if head == pending.count {
            pending.removeAll(keepingCapacity: true)
            head = 0
        } else if head > 64 && head * 2 > pending.count {
            pending.removeFirst(head)
            head = 0
        }
        let result: Result<PostgresRows, PostgresError>
        if prepareFailed, let key = entry.preparedKey { prepared[key] = nil }
        prepareFailed = false
        resultsInEntry = 0
        if let e = error {
            result = .failure(e)
            if let r = rows { PQclear(r) }
        } else {
            result = .success(PostgresRows(rows))
        }
        rows = nil
        error = nil
        entry.continuation?.resume(returning: result)
        entry.callback?(result)
        if inFlight == 0 { onIdle?(self) }
    }

    private func drainNotifications() {
        guard let conn else { return }
        while let n = PQnotifies(conn) {
            let channel = String(cString: n.pointee.relname)
            let payload = String(cString: n.pointee.extra)
            PQfreemem(n)
            onNotification?(channel, payload)
        }
    }

    // MARK: Failing

    /// Fails every answer still expected, stops watching and closes.
    func breakConnection(_ reason: String) {
        guard !isBroken else { return }
        isBroken = true
        if let watch { loop.unwatch(watch) }
        watch = nil
        let waiting = pending[head...]
        pending.removeAll()
        head = 0
        if let r = rows { PQclear(r) }
        rows = nil
        error = nil
        resultsInEntry = 0
        prepareFailed = false
        for entry in waiting {
            entry.continuation?.resume(returning: .failure(PostgresError(.connectionLost, reason)))
            entry.callback?(.failure(PostgresError(.connectionLost, reason)))
        }
        if let conn { PQfinish(conn) }
        conn = nil
        onBroken?(self)
    }

    /// Closes when nothing is in flight (at once otherwise: answers still expected fail).
    func close() { breakConnection("the client was closed") }

    private func lastError() -> String {
        guard let conn, let m = PQerrorMessage(conn) else { return "unknown error" }
        return Self.trimmed(String(cString: m))
    }

    static func serverError(_ r: OpaquePointer) -> PostgresError {
        func field(_ code: UInt8) -> String? { PQresultErrorField(r, Int32(code)).map { String(cString: $0) } }
        let message = field(UInt8(ascii: "M")) ?? trimmed(String(cString: PQresultErrorMessage(r)))
        return PostgresError(.server, message, sqlState: field(UInt8(ascii: "C")), detail: field(UInt8(ascii: "D")))
    }

    static func trimmed(_ s: String) -> String {
        var s = Substring(s)
        while let last = s.last, last.isWhitespace { s = s.dropLast() }
        return String(s)
    }
}

/// Runs `body` with the strings as NUL-terminated C strings (`nil` stays a NULL pointer).
func withCStrings<R>(_ strings: [String?], _ body: ([UnsafePointer<CChar>?]) -> R) -> R {
    let copies: [UnsafeMutablePointer<CChar>?] = strings.map { $0.map { strdup($0) } }
    defer { for p in copies { free(p) } }
    return body(copies.map { $0.map { UnsafePointer($0) } })
}
