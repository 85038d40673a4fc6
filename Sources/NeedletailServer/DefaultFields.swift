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
    public var fields: [(name: String, value: String)] { storage.fields }

    /// One reference for all of it: the loop context's copy is read on every answer, and a
    /// struct of four arrays cost four retains and releases each time (docs/PERFORMANCE.md).
    private let storage: FixedFields

    /// Fields with CR, LF or NUL, or a name that is not a token, are left out.
    public init(_ fields: [(name: String, value: String)]) {
        storage = FixedFields(fields)
    }

    /// Appends the `fixed` fields, then the lines of the defaults that neither `headers` nor
    /// `fixed` set (names compared in place, ASCII case ignored: no String is made per answer).
    @inline(__always)
    func append(to out: ByteBuffer, unlessSetIn headers: [(name: String, value: String)], after fixed: FixedFields?) {
        if let fixed { fixed.lines.withUnsafeBytes { out.append($0) } }
        let s = storage
        if headers.isEmpty && fixed == nil {
            s.lines.withUnsafeBytes { out.append($0) }
            return
        }
        for i in s.fields.indices {
            let key = s.lowercasedNames[i]
            let overridden =
                key.withUnsafeBufferPointer { key in headers.contains { asciiEquals($0.name, key) } }
                || (fixed?.lowercasedNames.contains(key) ?? false)
            if !overridden { s.fieldLines[i].withUnsafeBytes { out.append($0) } }
        }
    }
}
