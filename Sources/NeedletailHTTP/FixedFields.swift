/// Header fields that many answers share (every live page's security policy, the server's
/// default fields): checked and encoded once, then written with one copy per answer instead of
/// being appended, checked and encoded field by field on every request (docs/PERFORMANCE.md).
///
/// Set on a response with `Response.fixedFields`; the codecs write these lines after the
/// response's own `headers`.
public final class FixedFields: Sendable {
    /// The fields, in the order they are sent.
    public let fields: [(name: String, value: String)]
    /// The names of the fields left out because a name was not a token or a value held CR,
    /// LF or NUL (none are ever sent).
    public let refused: [String]
    /// `Name: value\r\n` for each field, in order.
    public let lines: [UInt8]
    /// Each field's own line.
    public let fieldLines: [[UInt8]]
    /// Each field's name in ASCII lower case.
    public let lowercasedNames: [[UInt8]]
    /// Whether a field bears on how the body is encoded (Content-Encoding, Vary, ETag): code
    /// that rewrites those moves the fields into the response's own first.
    public let concernsEncoding: Bool

    /// `fields` without those that could not be sent safely (listed in `refused`).
    public init(_ fields: [(name: String, value: String)]) {
        var kept: [(name: String, value: String)] = []
        var refused: [String] = []
        for f in fields {
            if FieldCheck.isSafe(name: f.name, value: f.value) { kept.append(f) } else { refused.append(f.name) }
        }
        self.fields = kept
        self.refused = refused
        lowercasedNames = kept.map { Array($0.name.lowercased().utf8) }
        fieldLines = kept.map { Array("\($0.name): \($0.value)\r\n".utf8) }
        lines = Array(fieldLines.joined())
        concernsEncoding = lowercasedNames.contains { ["content-encoding", "vary", "etag"].contains(String(decoding: $0, as: UTF8.self)) }
    }
}

extension Response {
    /// The response's own fields followed by its fixed ones: every field it sends beside the
    /// codec's framing (tests, logs; not the hot path).
    public var allHeaders: [(name: String, value: String)] {
        guard let f = fixedFields else { return headers }
        return headers + f.fields
    }

    /// Moves the fixed fields into `headers`, for code that edits a field they may hold.
    public mutating func unfixFields() {
        guard let f = fixedFields else { return }
        headers += f.fields
        fixedFields = nil
    }
}
