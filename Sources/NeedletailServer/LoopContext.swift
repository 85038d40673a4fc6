import Logging
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

    init(responder: any Responder, limits: HTTPLimits, fastCGI: FastCGILimits, defaults: DefaultFields = .standard, logger: Logger) {
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
