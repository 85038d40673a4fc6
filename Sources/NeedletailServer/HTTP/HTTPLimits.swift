/// Limits the HTTP/1.1 codec enforces, with their defaults. docs/HTTP.md says why each answer.
public struct HTTPLimits: Sendable {
    /// Longest request line (method, target, version); over it: 414.
    public var maxRequestLine = 8 * 1024
    /// Largest header section (the fields after the request line); over it: 431.
    public var maxHeaderBytes = 8 * 1024
    /// Most header fields in a request; over it: 431.
    public var maxHeaderFields = 100
    /// Largest request body; over it: 413.
    public var maxBodyBytes = 1 << 20
    /// Longest chunk-size line of a chunked body, extensions included; over it: 400.
    public var maxChunkLine = 4 * 1024
    /// Seconds a client has to send a whole request head; then 408 and close.
    public var headerTimeout = 10
    /// Seconds allowed between two reads of a request body; then 408 and close.
    public var bodyTimeout = 10
    /// Seconds an idle keep-alive connection is kept; then it is closed.
    public var keepAliveTimeout = 60
    public init() {}
}
