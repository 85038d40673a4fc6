// CSS written in Swift: typed declarations (one builder per property, generated from the
// property table in Spec/css-properties.txt, so a misspelled property does not compile),
// selectors built from the element table, and rules, media queries and style sheets for
// `<style>` elements. Every value is rendered from a typed form; strings and the `.custom`
// escape hatch are escaped so that nothing can end a declaration, a rule or the `<style>`.

/// One `property: value` pair.
public struct CSSDeclaration: Sendable, Equatable {
    /// The property name, e.g. `font-size`.
    public let property: String
    /// The value as CSS text.
    public let value: String

    @usableFromInline
    init(_ property: String, _ value: String) {
        self.property = property
        self.value = value
    }

    /// A property the table does not know (a new or vendor property, or a custom property
    /// `--name`). `name` must be an identifier (letters, digits, `-`, `_`); `value` has `<`,
    /// `{`, `}`, `;`, `\`, quotes and control characters escaped, so it cannot leave its
    /// declaration.
    public static func custom(name: String, value: String) -> CSSDeclaration {
        CSSDeclaration(CSSIdentifier.isValid(name) ? name : "--invalid-name", CSSIdentifier.escapeValue(value))
    }

    /// `name: value` as CSS text.
    public var text: String { property + ":" + value }
}

/// Declarations in order, as for a `style` attribute or a rule body.
public struct CSSStyle: Sendable, Equatable {
    public var declarations: [CSSDeclaration]
    public init(_ declarations: [CSSDeclaration]) { self.declarations = declarations }
    /// `a:b;c:d`.
    public var declarationsText: String { declarations.map(\.text).joined(separator: ";") }
}

enum CSSIdentifier {
    static func isValid(_ s: String) -> Bool {
        !s.isEmpty
            && s.utf8.allSatisfy { b in
                (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A) || (b >= 0x30 && b <= 0x39) || b == UInt8(ascii: "-")
                    || b == UInt8(ascii: "_")
            }
    }

    /// An identifier for a class or id selector, with anything else hex-escaped.
    static func escapeIdentifier(_ s: String) -> String {
        var out = ""
        for (i, u) in s.unicodeScalars.enumerated() {
            let v = u.value
            let plain =
                (v >= 0x61 && v <= 0x7A) || (v >= 0x41 && v <= 0x5A) || v == 0x2D || v == 0x5F || v >= 0xA0
                || (i > 0 && v >= 0x30 && v <= 0x39)
            if plain { out.unicodeScalars.append(u) } else { out += "\\" + String(v, radix: 16) + " " }
        }
        return out.isEmpty ? "\\-" : out
    }

    static func escapeValue(_ s: String) -> String {
        var out = ""
        for u in s.unicodeScalars {
            switch u {
            case "<", ">", "{", "}", ";", "\\", "\"", "'", "&": out += "\\" + String(u.value, radix: 16) + " "
            default:
                if u.value < 0x20 || u.value == 0x7F { out += " " } else { out.unicodeScalars.append(u) }
            }
        }
        return out
    }
}

/// A length or percentage.
public struct CSSLength: Sendable, Equatable, ExpressibleByIntegerLiteral {
    /// As CSS text.
    public let css: String
    init(_ css: String) { self.css = css }
    /// A plain number means pixels (`0` is `0`).
    public init(integerLiteral value: Int) { css = value == 0 ? "0" : "\(value)px" }
    public static func px(_ v: Double) -> CSSLength { CSSLength(CSSNumber.format(v) + "px") }
    public static func em(_ v: Double) -> CSSLength { CSSLength(CSSNumber.format(v) + "em") }
    public static func rem(_ v: Double) -> CSSLength { CSSLength(CSSNumber.format(v) + "rem") }
    public static func ch(_ v: Double) -> CSSLength { CSSLength(CSSNumber.format(v) + "ch") }
    public static func vw(_ v: Double) -> CSSLength { CSSLength(CSSNumber.format(v) + "vw") }
    public static func vh(_ v: Double) -> CSSLength { CSSLength(CSSNumber.format(v) + "vh") }
    public static func percent(_ v: Double) -> CSSLength { CSSLength(CSSNumber.format(v) + "%") }
    public static let zero = CSSLength("0")
    public static let auto = CSSLength("auto")
    public static let fitContent = CSSLength("fit-content")
    public static let maxContent = CSSLength("max-content")
    public static let minContent = CSSLength("min-content")
    /// `var(--name)`.
    public static func variable(_ name: String) -> CSSLength { CSSLength("var(--" + CSSIdentifier.escapeIdentifier(name) + ")") }
}

/// A number or the global keywords, for unitless properties (`opacity`, `z-index`, `flex-grow`).
public struct CSSNumber: Sendable, Equatable, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral {
    public let css: String
    public init(integerLiteral value: Int) { css = "\(value)" }
    public init(floatLiteral value: Double) { css = CSSNumber.format(value) }
    static func format(_ v: Double) -> String {
        guard v.isFinite else { return "0" }
        if v == v.rounded(), abs(v) < 1e15 { return "\(Int(v))" }
        return "\(v)"
    }
}

/// A colour.
public struct CSSColor: Sendable, Equatable {
    public let css: String
    init(_ css: String) { self.css = css }
    /// `#rrggbb` from a 24-bit value: `.hex(0x336699)`.
    public static func hex(_ rgb: UInt32) -> CSSColor {
        let digits = String(rgb & 0xFFFFFF, radix: 16)
        return CSSColor("#" + String(repeating: "0", count: 6 - digits.count) + digits)
    }
    public static func rgb(_ r: UInt8, _ g: UInt8, _ b: UInt8) -> CSSColor { CSSColor("rgb(\(r) \(g) \(b))") }
    public static func rgba(_ r: UInt8, _ g: UInt8, _ b: UInt8, _ alpha: Double) -> CSSColor {
        CSSColor("rgb(\(r) \(g) \(b) / \(CSSNumber.format(min(max(alpha, 0), 1))))")
    }
    public static func hsl(_ hue: Double, _ saturation: Double, _ lightness: Double) -> CSSColor {
        CSSColor("hsl(\(CSSNumber.format(hue)) \(CSSNumber.format(saturation))% \(CSSNumber.format(lightness))%)")
    }
    /// `var(--name)`.
    public static func variable(_ name: String) -> CSSColor { CSSColor("var(--" + CSSIdentifier.escapeIdentifier(name) + ")") }
    public static let currentColor = CSSColor("currentColor")
    public static let transparent = CSSColor("transparent")
    public static let black = CSSColor("black")
    public static let white = CSSColor("white")
    public static let gray = CSSColor("gray")
    public static let red = CSSColor("red")
    public static let green = CSSColor("green")
    public static let blue = CSSColor("blue")
    public static let inherit = CSSColor("inherit")
}

/// A duration.
public struct CSSTime: Sendable, Equatable {
    public let css: String
    public static func ms(_ v: Double) -> CSSTime { CSSTime(css: CSSNumber.format(v) + "ms") }
    public static func s(_ v: Double) -> CSSTime { CSSTime(css: CSSNumber.format(v) + "s") }
}

/// Any value, for properties the table gives no narrower type: built from typed parts, never
/// from free text (use `CSSDeclaration.custom` for that).
public struct CSSValue: Sendable, Equatable, ExpressibleByIntegerLiteral {
    public let css: String
    init(_ css: String) { self.css = css }
    public init(integerLiteral value: Int) { css = "\(value)" }
    public static func length(_ l: CSSLength) -> CSSValue { CSSValue(l.css) }
    public static func color(_ c: CSSColor) -> CSSValue { CSSValue(c.css) }
    public static func number(_ n: Double) -> CSSValue { CSSValue(CSSNumber.format(n)) }
    public static func time(_ t: CSSTime) -> CSSValue { CSSValue(t.css) }
    /// A CSS string, quoted and escaped.
    public static func string(_ s: String) -> CSSValue { CSSValue(HTMLEscaping.cssString(s)) }
    /// A keyword; anything but letters, digits, `-` and `_` is escaped.
    public static func keyword(_ k: String) -> CSSValue { CSSValue(CSSIdentifier.escapeIdentifier(k)) }
    /// `url("...")`, escaped; unsafe schemes are refused as in URL attributes.
    public static func url(_ u: String) -> CSSValue {
        CSSValue("url(" + HTMLEscaping.cssString(HTMLEscaping.isSafeURL(u) ? u : HTMLEscaping.refusedURL) + ")")
    }
    /// Space-separated parts: `.list(.length(.px(1)), .keyword("solid"), .color(.black))`.
    public static func list(_ parts: CSSValue...) -> CSSValue { CSSValue(parts.map(\.css).joined(separator: " ")) }
    /// Comma-separated parts.
    public static func commaList(_ parts: CSSValue...) -> CSSValue { CSSValue(parts.map(\.css).joined(separator: ",")) }
    public static let none = CSSValue("none")
    public static let auto = CSSValue("auto")
    public static let inherit = CSSValue("inherit")
    public static let initial = CSSValue("initial")
    public static let unset = CSSValue("unset")
}

/// A font family: a generic family or a name (quoted and escaped).
public struct CSSFontFamily: Sendable, Equatable, ExpressibleByStringLiteral {
    public let css: String
    public init(stringLiteral value: String) { css = HTMLEscaping.cssString(value) }
    init(raw: String) { css = raw }
    public static let serif = CSSFontFamily(raw: "serif")
    public static let sansSerif = CSSFontFamily(raw: "sans-serif")
    public static let monospace = CSSFontFamily(raw: "monospace")
    public static let systemUI = CSSFontFamily(raw: "system-ui")
    public static let uiMonospace = CSSFontFamily(raw: "ui-monospace")
}

/// A selector, built from element names of the element table, classes, ids, pseudo-classes and
/// combinators: `.tag(.ul).child(.tag(.li)).and(.class("new"))` is `ul>li.new`.
public struct CSSSelector: Sendable, Equatable {
    /// As CSS text.
    public let css: String
    init(_ css: String) { self.css = css }
    /// An element, by its tag from the element table (`.tag(.div)`).
    public static func tag(_ t: HTMLTag) -> CSSSelector { CSSSelector(t.rawValue) }
    public static func `class`(_ name: String) -> CSSSelector { CSSSelector("." + CSSIdentifier.escapeIdentifier(name)) }
    public static func id(_ name: String) -> CSSSelector { CSSSelector("#" + CSSIdentifier.escapeIdentifier(name)) }
    public static let universal = CSSSelector("*")
    public static let root = CSSSelector(":root")
    /// Several selectors sharing one rule: `a, b`.
    public static func list(_ selectors: CSSSelector...) -> CSSSelector { CSSSelector(selectors.map(\.css).joined(separator: ",")) }
    /// Both at once (compound): `div.note`.
    public func and(_ other: CSSSelector) -> CSSSelector { CSSSelector(css + other.css) }
    /// `self other`.
    public func descendant(_ other: CSSSelector) -> CSSSelector { CSSSelector(css + " " + other.css) }
    /// `self>other`.
    public func child(_ other: CSSSelector) -> CSSSelector { CSSSelector(css + ">" + other.css) }
    /// `self+other`.
    public func adjacent(_ other: CSSSelector) -> CSSSelector { CSSSelector(css + "+" + other.css) }
    /// `self:not(other)`.
    public func not(_ other: CSSSelector) -> CSSSelector { CSSSelector(css + ":not(" + other.css + ")") }
    /// A pseudo-class from the list of known ones.
    public func pseudo(_ p: CSSPseudoClass) -> CSSSelector { CSSSelector(css + ":" + p.rawValue) }
    public var hover: CSSSelector { pseudo(.hover) }
    public var focus: CSSSelector { pseudo(.focus) }
}

/// Pseudo-classes that take no argument.
public enum CSSPseudoClass: String, Sendable {
    case hover, focus, active, visited, link, checked, disabled, enabled, empty, target, required, invalid, valid
    case firstChild = "first-child"
    case lastChild = "last-child"
    case onlyChild = "only-child"
    case focusVisible = "focus-visible"
    case focusWithin = "focus-within"
    case placeholderShown = "placeholder-shown"
}

/// A rule: a selector and its declarations.
public struct CSSRule: Sendable, Equatable {
    public let selector: CSSSelector
    public let declarations: [CSSDeclaration]
    public init(_ selector: CSSSelector, _ declarations: CSSDeclaration...) {
        self.selector = selector
        self.declarations = declarations
    }
    var css: String { selector.css + "{" + CSSStyle(declarations).declarationsText + "}" }
}

/// A media condition for `@media`.
public struct CSSMediaQuery: Sendable, Equatable {
    public let css: String
    public static func maxWidth(_ l: CSSLength) -> CSSMediaQuery { CSSMediaQuery(css: "(max-width:\(l.css))") }
    public static func minWidth(_ l: CSSLength) -> CSSMediaQuery { CSSMediaQuery(css: "(min-width:\(l.css))") }
    public static let prefersDark = CSSMediaQuery(css: "(prefers-color-scheme:dark)")
    public static let prefersReducedMotion = CSSMediaQuery(css: "(prefers-reduced-motion:reduce)")
    public static let print = CSSMediaQuery(css: "print")
    public func and(_ other: CSSMediaQuery) -> CSSMediaQuery { CSSMediaQuery(css: css + " and " + other.css) }
}

/// Builds the rules of a style sheet.
@resultBuilder
public enum CSSBuilder {
    public static func buildExpression(_ rule: CSSRule) -> [String] { [rule.css] }
    public static func buildExpression(_ media: CSSMedia) -> [String] { [media.css] }
    public static func buildBlock(_ parts: [String]...) -> [String] { parts.flatMap { $0 } }
    public static func buildOptional(_ parts: [String]?) -> [String] { parts ?? [] }
    public static func buildEither(first: [String]) -> [String] { first }
    public static func buildEither(second: [String]) -> [String] { second }
    public static func buildArray(_ parts: [[String]]) -> [String] { parts.flatMap { $0 } }
}

/// `@media QUERY { rules }`.
public struct CSSMedia: Sendable {
    let css: String
    public init(_ query: CSSMediaQuery, @CSSBuilder _ rules: () -> [String]) {
        css = "@media " + query.css + "{" + rules().joined() + "}"
    }
}

/// A style sheet: the content of a `<style>` element, or a file served as `text/css`.
public struct Stylesheet: Sendable {
    /// As CSS text (minified: no spaces that are not needed).
    public let css: String
    public init(@CSSBuilder _ rules: () -> [String]) { css = rules().joined(separator: "\n") }
}
