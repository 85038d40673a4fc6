import NeedletailBytes
import NeedletailHTTP

/// Header fields every response gets unless it sets the same field itself: natively, and in
/// the CGI head of FastCGI and CGI answers. The default is `X-Content-Type-Options: nosniff`
/// (browsers never guess a type other than the one sent). No `Server` field is sent unless
/// you add one here, so no version is ever advertised by default.
public struct DefaultFields: Sendable {
    /// `X-Content-Type-Options: nosniff`.
    public static let standard = DefaultFields([("X-Content-Type-Options", "nosniff")])

    /// The fields, in the order they are sent.
    public let fields: [(name: String, value: String)]
    private let lowercasedNames: [[UInt8]]
    /// All of them as header lines, for responses that set no field of their own.
    private let lines: [UInt8]
    /// Each field's own line.
    private let fieldLines: [[UInt8]]

    /// Fields with CR, LF or NUL, or a name that is not a token, are left out.
    public init(_ fields: [(name: String, value: String)]) {
        let safe = fields.filter { HTTPResponseEncoder.isSafe(name: $0.name, value: $0.value) }
        self.fields = safe
        lowercasedNames = safe.map { Array($0.name.lowercased().utf8) }
        fieldLines = safe.map { Array("\($0.name): \($0.value)\r\n".utf8) }
        lines = Array(fieldLines.joined())
    }

    /// Appends the lines of the fields that `headers` does not set (names compared in place,
    /// ASCII case ignored: no String is made per answer).
    @inline(__always)
    func append(to out: ByteBuffer, unlessSetIn headers: [(name: String, value: String)]) {
        if headers.isEmpty {
            lines.withUnsafeBytes { out.append($0) }
            return
        }
        for i in fields.indices {
            let overridden = lowercasedNames[i].withUnsafeBufferPointer { key in headers.contains { asciiEquals($0.name, key) } }
            if !overridden { fieldLines[i].withUnsafeBytes { out.append($0) } }
        }
    }
}
