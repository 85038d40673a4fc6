import Logging
import NeedletailCompression
import NeedletailLoop
import NeedletailHTTP
import NeedletailPOSIX

/// What every connection on one loop shares, whichever protocol it speaks: the app, the
/// limits, the Date cache, the logger.
/// What HTTPS changes in the answers of one server (`ServerConfiguration.strictTransportSecurity`,
/// `redirectToHTTPS`).
struct HTTPSFacts {
    var strictTransportSecurity: String? = nil
    /// The HTTPS port plain HTTP requests are redirected to; nil: no redirect.
    var redirectPort: UInt16? = nil
    /// A path served over plain HTTP all the same (the health check).
    var exempt: String? = nil
}

final class LoopContext {
    let responder: any Responder
    let limits: HTTPLimits
    let fastCGI: FastCGILimits
    let dates = HTTPDate.Cache()
    let logger: Logger
    /// Replaced on this loop's thread by a reload (SIGHUP).
    @exclusivity(unchecked) var defaults: DefaultFields {
        didSet { secureDefaults = LoopContext.secure(defaults, https) }
    }
    /// `defaults` for answers over TLS (with `Strict-Transport-Security` when it is set).
    @exclusivity(unchecked) private(set) var secureDefaults: DefaultFields
    let https: HTTPSFacts
    /// Requests whose async handler is suspended on this loop, and how many may be (over it: 503).
    @exclusivity(unchecked) var suspended = 0
    let maxSuspended: Int
    /// Gzip for native answers; nil: off.
    let compression: CompressionSettings?
    /// This loop's encoder (two deflate streams, about 540 KB).
    let gzip: GzipEncoder?

    /// This loop's access-log lines, counts, and the slow-request threshold (each nil: off).
    let accessLog: AccessLogBuffer?
    let stats: LoopStats?
    let slowNanoseconds: UInt64?
    /// Whether requests are recorded at all (any of the three).
    let observing: Bool
    /// Whether a record needs the clock: the counts' histogram, the slow log, or a timed access
    /// log (nginx's combined format has no duration, so a plain log reads no clock).
    let timing: Bool

    init(responder: any Responder, https: HTTPSFacts = HTTPSFacts(), limits: HTTPLimits, fastCGI: FastCGILimits,
         defaults: DefaultFields = .standard,
         maxSuspended: Int = ServerConfiguration.defaultMaxSuspendedRequests, compression: CompressionSettings? = nil,
         accessLog: AccessLogBuffer? = nil, stats: LoopStats? = nil, slowMilliseconds: Int? = nil,
         logger: Logger) {
        self.accessLog = accessLog
        self.stats = stats
        slowNanoseconds = slowMilliseconds.map { UInt64(max(0, $0)) * 1_000_000 }
        observing = accessLog != nil || stats != nil || slowMilliseconds != nil
        timing = accessLog?.settings.timed == true || stats != nil || slowMilliseconds != nil
        self.maxSuspended = maxSuspended
        self.compression = compression
        gzip = compression.flatMap { GzipEncoder(settings: $0.gzip) }
        self.responder = responder
        self.limits = limits
        self.fastCGI = fastCGI
        self.defaults = defaults
        self.https = https
        secureDefaults = LoopContext.secure(defaults, https)
        self.logger = logger
    }

    private static func secure(_ defaults: DefaultFields, _ https: HTTPSFacts) -> DefaultFields {
        guard let value = https.strictTransportSecurity else { return defaults }
        return DefaultFields(defaults.fields + [("Strict-Transport-Security", value)])
    }

    /// Logs a response field that was left out because it could have split the response.
    func droppedField(_ name: String) {
        logger.warning("dropped response header field with CR, LF or NUL, or an invalid name", metadata: ["field": "\(name)"])
    }
}

extension LoopContext {
    /// Records an answered request: its access-log line, its counts, and a warning when slow.
    /// `ready`: when the answer was in hand (before its head was written).
    /// `stream`: an answer streamed from now on (counted, and logged as it begins).
    func observe(_ o: Observed, status: Int, bodyBytes: Int, route: String?, ready: UInt64, now: Int, stream: Bool = false) {
        observe(
            o.request, start: o.start, waited: o.waited, status: status, bodyBytes: bodyBytes, route: route ?? o.route, ready: ready,
            now: now, stream: stream)
    }

    /// Records `request`, answered: timed from `start`, of which `waited` suspended.
    func observe(
        _ request: borrowing Request, start: UInt64, waited: UInt64, status: Int, bodyBytes: Int, route: String?, ready: UInt64,
        now: Int, stream: Bool = false
    ) {
        if stream { stats?.streams += 1 }
        let end = clock()
        let elapsed = end &- start
        accessLog?.append(request, status: status, bodyBytes: bodyBytes, microseconds: Int(elapsed / 1000), now: now)
        stats?.record(route: route, status: status, seconds: Double(elapsed) / 1e9, bodyBytes: bodyBytes)
        if let slow = slowNanoseconds, elapsed >= slow {
            func ms(_ ns: UInt64) -> String { String(Double(ns / 1000) / 1000) }
            let onLoop = ready &- start &- waited
            logger.warning(
                "slow request",
                metadata: [
                    "method": "\(request.method.rawValue)", "path": "\(request.path)", "status": "\(status)",
                    "ms": "\(ms(elapsed))", "render_ms": "\(ms(onLoop))", "wait_ms": "\(ms(waited))",
                    "write_ms": "\(ms(end &- ready))",
                ])
        }
    }
}

extension LoopContext {
    /// The monotonic clock when a record needs it (`timing`), else 0.
    @inline(__always)
    func clock() -> UInt64 { timing ? monotonicNanoseconds() : 0 }
}

/// A request being timed for the access log, the metrics or the slow-request log.
struct Observed {
    let request: Request
    let start: UInt64
    /// Time spent suspended (an async handler waiting), and since when it is suspended now.
    var waited: UInt64 = 0
    var suspendedAt: UInt64 = 0
    /// The route of a pending answer's placeholder (its final answer comes without one).
    var route: String? = nil

    init(_ request: consuming Request, start: UInt64) {
        self.request = request
        self.start = start
    }

    mutating func suspend() { suspendedAt = monotonicNanoseconds() }
    mutating func resume() { waited &+= monotonicNanoseconds() &- suspendedAt }
}

/// A codec, its connection and an exchange, handed to a task isolated to their loop: they are
/// loop-confined, and the task only ever runs on that loop (it is isolated to it), which is
/// the invariant behind `@unchecked Sendable`.
struct OnLoop<Codec: AnyObject, Exchange: AnyObject>: @unchecked Sendable {
    let codec: Codec
    let connection: Connection
    let exchange: Exchange
}
