/// A value bound to a query's parameter: sent apart from the SQL text (`$1`, `$2`…) with its
/// type, never spliced into it. Text format on the wire, as libpq's `PQsendQueryParams` takes.
public protocol PostgresBindable: Sendable {
    /// The parameter's type (a `pg_type` OID): `int8`, `text`, `bool`, `float8`, `bytea`…
    static var postgresType: UInt32 { get }
    /// The value in PostgreSQL's text input format; `nil` binds SQL NULL.
    var postgresText: String? { get }
}

/// A value read from a result column (text format): `nil` when the text is not one.
public protocol PostgresDecodable {
    init?(postgresText: String)
}

/// OIDs of the built-in types (`pg_type.h`).
public enum PostgresType {
    public static let bool: UInt32 = 16
    public static let bytea: UInt32 = 17
    public static let int8: UInt32 = 20
    public static let int4: UInt32 = 23
    public static let text: UInt32 = 25
    public static let float8: UInt32 = 701
    /// Left to the server to infer from the statement.
    public static let unknown: UInt32 = 0
}

extension Int: PostgresBindable, PostgresDecodable {
    public static var postgresType: UInt32 { PostgresType.int8 }
    public var postgresText: String? { String(self) }
    public init?(postgresText: String) { self.init(postgresText) }
}

extension Int32: PostgresBindable, PostgresDecodable {
    public static var postgresType: UInt32 { PostgresType.int4 }
    public var postgresText: String? { String(self) }
    public init?(postgresText: String) { self.init(postgresText) }
}

extension String: PostgresBindable, PostgresDecodable {
    public static var postgresType: UInt32 { PostgresType.text }
    public var postgresText: String? { self }
    public init?(postgresText: String) { self = postgresText }
}

extension Bool: PostgresBindable, PostgresDecodable {
    public static var postgresType: UInt32 { PostgresType.bool }
    public var postgresText: String? { self ? "t" : "f" }
    public init?(postgresText: String) {
        switch postgresText {
        case "t", "true": self = true
        case "f", "false": self = false
        default: return nil
        }
    }
}

extension Double: PostgresBindable, PostgresDecodable {
    public static var postgresType: UInt32 { PostgresType.float8 }
    public var postgresText: String? {
        if isNaN { return "NaN" }
        if isInfinite { return self < 0 ? "-Infinity" : "Infinity" }
        return "\(self)"
    }
    public init?(postgresText: String) {
        switch postgresText {
        case "NaN": self = .nan
        case "Infinity": self = .infinity
        case "-Infinity": self = -.infinity
        default: self.init(postgresText)
        }
    }
}

/// Bytes as `bytea` (hex text format, `\x…`).
extension Array: PostgresBindable where Element == UInt8 {
    public static var postgresType: UInt32 { PostgresType.bytea }
    public var postgresText: String? {
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(2 + count * 2)
        out.append(UInt8(ascii: "\\"))
        out.append(UInt8(ascii: "x"))
        for b in self {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

extension Array: PostgresDecodable where Element == UInt8 {
    /// Reads the hex format (`\x…`, the server's default `bytea_output`).
    public init?(postgresText: String) {
        let u = Array(postgresText.utf8)
        guard u.count >= 2, u[0] == UInt8(ascii: "\\"), u[1] == UInt8(ascii: "x"), u.count % 2 == 0 else { return nil }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
            default: return nil
            }
        }
        var out = [UInt8]()
        out.reserveCapacity((u.count - 2) / 2)
        var i = 2
        while i < u.count {
            guard let h = nibble(u[i]), let l = nibble(u[i + 1]) else { return nil }
            out.append(h << 4 | l)
            i += 2
        }
        self = out
    }
}

extension Optional: PostgresBindable where Wrapped: PostgresBindable {
    public static var postgresType: UInt32 { Wrapped.postgresType }
    public var postgresText: String? { self?.postgresText }
}
