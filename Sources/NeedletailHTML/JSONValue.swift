import NeedletailBytes

/// A JSON value built from Swift values, encoded safely for HTML: string contents have `< > &`
/// (and `'`, U+2028, U+2029) as `\u` escapes, so the text can go inside `<script>` or an
/// event attribute without ending it. Object keys keep their order.
public enum JSONValue: Sendable, Equatable, ScriptBody,
    ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    case string(String)
    case int(Int)
    case double(Double)
    case bool(Bool)
    case null
    case array([JSONValue])
    case object([(String, JSONValue)])

    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) { self = .object(elements) }
    public init(nilLiteral: ()) { self = .null }

    public static func == (a: JSONValue, b: JSONValue) -> Bool { a.json == b.json }

    /// The encoded text.
    public var json: String {
        let b = ByteBuffer(capacity: 64)
        append(to: b)
        return String(decoding: b.bytes, as: UTF8.self)
    }

    /// The encoded text, for `<script type="application/json">`.
    public var scriptText: String { json }

    /// Appends the encoded text to `buffer`.
    public func append(to buffer: ByteBuffer) {
        switch self {
        case .string(let s): HTMLEscaping.appendJSONString(s, to: buffer)
        case .int(let i): buffer.appendDecimal(i)
        case .double(let d):
            // JSON has no NaN or infinity.
            if d.isFinite { buffer.append(string: d == d.rounded() && abs(d) < 1e15 ? "\(Int(d))" : "\(d)") } else { buffer.append("null") }
        case .bool(let v): buffer.append(v ? "true" : "false")
        case .null: buffer.append("null")
        case .array(let items):
            buffer.append(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if i > 0 { buffer.append(UInt8(ascii: ",")) }
                item.append(to: buffer)
            }
            buffer.append(UInt8(ascii: "]"))
        case .object(let members):
            buffer.append(UInt8(ascii: "{"))
            for (i, (k, v)) in members.enumerated() {
                if i > 0 { buffer.append(UInt8(ascii: ",")) }
                HTMLEscaping.appendJSONString(k, to: buffer)
                buffer.append(UInt8(ascii: ":"))
                v.append(to: buffer)
            }
            buffer.append(UInt8(ascii: "}"))
        }
    }
}
