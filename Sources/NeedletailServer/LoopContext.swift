import Logging
import NeedletailCompression
import NeedletailLoop
import NeedletailHTTP

/// What every connection on one loop shares, whichever protocol it speaks: the app, the
/// limits, the Date cache, the logger.
final class LoopContext {
    let responder: any Responder
    let limits: HTTPLimits
    let fastCGI: FastCGILimits
    let dates = HTTPDate.Cache()
    let logger: Logger
    let defaults: DefaultFields
    /// Requests whose async handler is suspended on this loop, and how many may be (over it: 503).
    @exclusivity(unchecked) var suspended = 0
    let maxSuspended: Int
    /// Gzip for native answers; nil: off.
    let compression: CompressionSettings?
    /// This loop's encoder (two deflate streams, about 540 KB).
    let gzip: GzipEncoder?

    init(responder: any Responder, limits: HTTPLimits, fastCGI: FastCGILimits, defaults: DefaultFields = .standard,
         maxSuspended: Int = ServerConfiguration.defaultMaxSuspendedRequests, compression: CompressionSettings? = nil,
         logger: Logger) {
        self.maxSuspended = maxSuspended
        self.compression = compression
        gzip = compression.flatMap { GzipEncoder(settings: $0.gzip) }
        self.responder = responder
        self.limits = limits
        self.fastCGI = fastCGI
        self.defaults = defaults
        self.logger = logger
    }

    /// Logs a response field that was left out because it could have split the response.
    func droppedField(_ name: String) {
        logger.warning("dropped response header field with CR, LF or NUL, or an invalid name", metadata: ["field": "\(name)"])
    }
}

/// A codec, its connection and an exchange, handed to a task isolated to their loop: they are
/// loop-confined, and the task only ever runs on that loop (it is isolated to it), which is
/// the invariant behind `@unchecked Sendable`.
struct OnLoop<Codec: AnyObject, Exchange: AnyObject>: @unchecked Sendable {
    let codec: Codec
    let connection: Connection
    let exchange: Exchange
}
