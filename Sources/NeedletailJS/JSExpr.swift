import NeedletailBytes
import NeedletailHTML

// JavaScript written in Swift, in the spirit of Parenscript: expressions are values that
// render to readable JS, property paths read like JS (`document.body.classList`), calls too
// (`console.log("x")`), and every literal made from a Swift value is JSON-encoded with
// `< > &` escaped, so generated code can go inside `<script>` or an event attribute safely.
// Identifiers are checked: anything that is not a valid JS identifier is refused (renders as
// `undefined` and is reported), so no text from outside can become code.

/// A JavaScript expression.
@dynamicMemberLookup
public struct JSExpr: Sendable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByNilLiteral
{
    /// The code.
    public let code: String
    /// Binding strength, to parenthesise only where needed (higher binds tighter).
    let precedence: Int

    init(code: String, precedence: Int) {
        self.code = code
        self.precedence = precedence
    }

    static let primary = 20
    static let call = 18
    static let prefix = 15

    /// A string literal.
    public init(stringLiteral value: String) { self.init(code: HTMLEscaping.jsonString(value), precedence: Self.primary) }
    public init(integerLiteral value: Int) { self.init(code: "\(value)", precedence: value < 0 ? Self.prefix : Self.primary) }
    public init(floatLiteral value: Double) { self.init(JSONValue.double(value)) }
    public init(booleanLiteral value: Bool) { self.init(code: value ? "true" : "false", precedence: Self.primary) }
    /// An array literal.
    public init(arrayLiteral elements: JSExpr...) {
        self.init(code: "[" + elements.map(\.code).joined(separator: ", ") + "]", precedence: Self.primary)
    }
    /// `null`.
    public init(nilLiteral: ()) { self.init(code: "null", precedence: Self.primary) }

    /// A literal from a Swift value (strings, numbers, arrays, objects), JSON-encoded.
    public init(_ value: JSONValue) {
        let text = value.json
        self.init(code: text.hasPrefix("{") ? "(" + text + ")" : text, precedence: Self.primary)
    }

    /// A string literal from a Swift string.
    public init(_ string: String) { self.init(stringLiteral: string) }
    /// A number literal.
    public init(_ int: Int) { self.init(integerLiteral: int) }

    /// A variable or global by name (`JSExpr.name("document")`). The name must be a JS
    /// identifier.
    public static func name(_ identifier: String) -> JSExpr {
        JSExpr(code: JSIdentifier.checked(identifier), precedence: primary)
    }

    /// `this`.
    public static let this = JSExpr(code: "this", precedence: primary)
    /// `undefined`.
    public static let undefined = JSExpr(code: "undefined", precedence: primary)

    /// An object literal, keys in order: `.object(["a": 1, "b": x])`.
    public static func object(_ members: KeyValuePairs<String, JSExpr>) -> JSExpr {
        let parts = members.map { (k, v) in
            (JSIdentifier.isValid(k) ? k : HTMLEscaping.jsonString(k)) + ": " + v.code
        }
        return JSExpr(code: "{" + parts.joined(separator: ", ") + "}", precedence: primary)
    }

    /// Property access: `a.b`.
    public subscript(dynamicMember name: String) -> JSExpr {
        JSExpr(code: operand(Self.call) + "." + JSIdentifier.checked(name), precedence: Self.call)
    }

    /// Index or computed property: `a[i]`.
    public subscript(_ index: JSExpr) -> JSExpr {
        JSExpr(code: operand(Self.call) + "[" + index.code + "]", precedence: Self.call)
    }

    /// A call: `f(a, b)`.
    public func callAsFunction(_ arguments: JSExpr...) -> JSExpr {
        JSExpr(code: operand(Self.call) + "(" + arguments.map(\.code).joined(separator: ", ") + ")", precedence: Self.call)
    }

    /// `new F(a, b)`.
    public static func new(_ constructor: JSExpr, _ arguments: JSExpr...) -> JSExpr {
        JSExpr(code: "new " + constructor.operand(call) + "(" + arguments.map(\.code).joined(separator: ", ") + ")", precedence: call)
    }

    /// An arrow function: `(a, b) => { ... }`.
    public static func function(_ parameters: String..., @JSBuilder body: () -> [JSStatement]) -> JSExpr {
        let params = parameters.map(JSIdentifier.checked).joined(separator: ", ")
        let block = JSStatement.block(body(), indent: 0)
        return JSExpr(code: "(" + params + ") => " + block, precedence: 2)
    }

    /// `typeof a`.
    public var typeOf: JSExpr { JSExpr(code: "typeof " + operand(Self.prefix), precedence: Self.prefix) }

    /// `a ? b : c`. (Not named `then`: that is the promise method, `p.then(f)`.)
    public func ternary(_ yes: JSExpr, _ no: JSExpr) -> JSExpr {
        JSExpr(code: operand(4) + " ? " + yes.operand(3) + " : " + no.operand(3), precedence: 3)
    }

    func operand(_ needed: Int) -> String { precedence >= needed ? code : "(" + code + ")" }

    static func binary(_ l: JSExpr, _ op: String, _ r: JSExpr, _ p: Int) -> JSExpr {
        // Left-associative: the right operand needs strictly tighter binding.
        JSExpr(code: l.operand(p) + " " + op + " " + r.operand(p + 1), precedence: p)
    }

    public static func + (l: JSExpr, r: JSExpr) -> JSExpr { binary(l, "+", r, 13) }
    public static func - (l: JSExpr, r: JSExpr) -> JSExpr { binary(l, "-", r, 13) }
    public static func * (l: JSExpr, r: JSExpr) -> JSExpr { binary(l, "*", r, 14) }
    public static func / (l: JSExpr, r: JSExpr) -> JSExpr { binary(l, "/", r, 14) }
    public static func % (l: JSExpr, r: JSExpr) -> JSExpr { binary(l, "%", r, 14) }
    /// `===` (strict equality: the only equality generated).
    public static func === (l: JSExpr, r: JSExpr) -> JSExpr { binary(l, "===", r, 10) }
    /// `!==`.
    public static func !== (l: JSExpr, r: JSExpr) -> JSExpr { binary(l, "!==", r, 10) }
    public static func < (l: JSExpr, r: JSExpr) -> JSExpr { binary(l, "<", r, 11) }
    public static func > (l: JSExpr, r: JSExpr) -> JSExpr { binary(l, ">", r, 11) }
    public static func <= (l: JSExpr, r: JSExpr) -> JSExpr { binary(l, "<=", r, 11) }
    public static func >= (l: JSExpr, r: JSExpr) -> JSExpr { binary(l, ">=", r, 11) }
    public static func && (l: JSExpr, r: JSExpr) -> JSExpr { binary(l, "&&", r, 6) }
    public static func || (l: JSExpr, r: JSExpr) -> JSExpr { binary(l, "||", r, 5) }
    public static prefix func ! (e: JSExpr) -> JSExpr { JSExpr(code: "!" + e.operand(prefix), precedence: prefix) }
    public static prefix func - (e: JSExpr) -> JSExpr { JSExpr(code: "-" + e.operand(prefix), precedence: prefix) }
    /// `a ?? b`.
    public func orDefault(_ other: JSExpr) -> JSExpr { JSExpr.binary(self, "??", other, 4) }
    /// `a instanceof B`.
    public func isInstance(of type: JSExpr) -> JSExpr { JSExpr.binary(self, "instanceof", type, 11) }
    /// `key in object`.
    public func isKey(in object: JSExpr) -> JSExpr { JSExpr.binary(self, "in", object, 11) }
}

/// Names of the browser's globals, so code reads like JS: `JS.document.getElementById("x")`.
public enum JS {
    public static let document = JSExpr.name("document")
    public static let window = JSExpr.name("window")
    public static let console = JSExpr.name("console")
    public static let location = JSExpr.name("location")
    public static let history = JSExpr.name("history")
    public static let sessionStorage = JSExpr.name("sessionStorage")
    public static let Math = JSExpr.name("Math")
    public static let JSON = JSExpr.name("JSON")
    public static let Date = JSExpr.name("Date")
    public static let fetch = JSExpr.name("fetch")
    public static let setTimeout = JSExpr.name("setTimeout")
    public static let clearTimeout = JSExpr.name("clearTimeout")
    public static let EventSource = JSExpr.name("EventSource")
    public static let FormData = JSExpr.name("FormData")
    public static let URLSearchParams = JSExpr.name("URLSearchParams")
    public static let encodeURIComponent = JSExpr.name("encodeURIComponent")
    public static let Object = JSExpr.name("Object")
    public static let Array = JSExpr.name("Array")
    public static let Error = JSExpr.name("Error")
}

enum JSIdentifier {
    static let reserved: Set<String> = [
        "break", "case", "catch", "class", "const", "continue", "debugger", "default", "delete", "do", "else",
        "enum", "export", "extends", "false", "finally", "for", "function", "if", "import", "in", "instanceof",
        "new", "null", "return", "super", "switch", "this", "throw", "true", "try", "typeof", "var", "void",
        "while", "with", "yield", "let", "static", "implements", "interface", "package", "private", "protected",
        "public", "await",
    ]

    static func isValid(_ s: String) -> Bool {
        guard let first = s.utf8.first else { return false }
        let startOK =
            (first >= 0x61 && first <= 0x7A) || (first >= 0x41 && first <= 0x5A) || first == UInt8(ascii: "_") || first == UInt8(ascii: "$")
        return startOK
            && s.utf8.allSatisfy { b in
                (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A) || (b >= 0x30 && b <= 0x39) || b == UInt8(ascii: "_")
                    || b == UInt8(ascii: "$")
            }
    }

    /// `s` if it is an identifier; otherwise `undefined`, and a report on stderr (a
    /// programming error in the Swift that builds the script).
    static func checked(_ s: String) -> String {
        if isValid(s) { return s }
        JSReport.badIdentifier(s)
        return "undefined"
    }

    /// For property names after a dot, reserved words are fine (`a.default`, `x.delete`).
    static func checkedBinding(_ s: String) -> String {
        if isValid(s) && !reserved.contains(s) { return s }
        JSReport.badIdentifier(s)
        return "_invalid_"
    }
}

enum JSReport {
    static func badIdentifier(_ s: String) {
        reportToStandardError("needletail: \"\(s)\" is not a JavaScript identifier; refused")
    }
}
