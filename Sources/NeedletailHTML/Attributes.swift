import NeedletailBytes

/// One attribute of an element: a name fixed at compile time (or a checked `data-`/`aria-`
/// suffix) and a typed value, escaped for a double-quoted attribute when rendered.
public struct Attribute {
    @usableFromInline
    enum Name {
        case known(StaticString)
        case data(String)
        case aria(String)
    }

    @usableFromInline
    enum Value {
        /// A compile-time constant (a literal, an enumerated value): escaped when rendered, but
        /// never a `String`, so nothing to retain, release or destroy.
        case constant(StaticString)
        case text(String)
        case url(String)
        case trustedURL(String)
        case int(Int)
        case number(Double)
        case flag
        case style(CSSStyle)
    }

    @usableFromInline let name: Name
    @usableFromInline let value: Value

    @inlinable
    init(_ name: Name, _ value: Value) {
        self.name = name
        self.value = value
    }

    @inlinable
    func render(into out: inout HTMLOutput) {
        switch name {
        case .known(let n):
            out.append(" ")
            out.append(n)
            #if DEBUG
                if n.utf8CodeUnitCount == 2, n.utf8Start[0] == UInt8(ascii: "i"), n.utf8Start[1] == UInt8(ascii: "d") {
                    if case .text(let v) = value { out.noteID(v) }
                    if case .constant(let v) = value { out.noteID(v.description) }
                }
            #endif
        case .data(let n):
            out.append(" data-")
            out.append(unescaped: n)
        case .aria(let n):
            out.append(" aria-")
            out.append(unescaped: n)
        }
        switch value {
        case .flag:
            return
        case .constant(let v):
            out.append("=\"")
            out.appendAttributeValue(static: v)
        case .text(let v):
            out.append("=\"")
            out.appendAttributeValue(v)
        case .url(let v):
            out.append("=\"")
            out.appendAttributeValue(HTMLEscaping.isSafeURL(v) ? v : HTMLEscaping.refusedURL)
        case .trustedURL(let v):
            out.append("=\"")
            out.appendAttributeValue(v)
        case .int(let v):
            out.append("=\"")
            out.appendDecimal(v)
        case .number(let v):
            out.append("=\"")
            out.append(unescaped: v.isFinite ? "\(v)" : "0")
        case .style(let s):
            out.append("=\"")
            out.appendAttributeValue(s.declarationsText)
        }
        out.append("\"")
    }
}

/// The attributes of one element, in the order they were given. Up to three are stored inline
/// (no allocation); more go to an array.
public struct AttributeList {
    @usableFromInline var first: Attribute?
    @usableFromInline var second: Attribute?
    @usableFromInline var third: Attribute?
    @usableFromInline var more: [Attribute]?
    /// How many attributes are stored, and whether one of them is `class`: the slot and the
    /// class merge are decided from these two words, without looking at a stored attribute.
    @usableFromInline var count: UInt8 = 0
    @usableFromInline var hasClass = false

    @inlinable
    public init() {}

    /// Whether no attribute was given.
    @inlinable
    public var isEmpty: Bool { count == 0 }

    /// Adds ` name="value"` for a name known at compile time. The class test is on the name
    /// itself, and the attribute is moved into its slot (a copy of an attribute retains its
    /// strings).
    @inlinable
    mutating func append(known name: StaticString, _ value: consuming Attribute.Value) {
        if Attribute.isClass(name) {
            // Several `.class(...)` calls make one attribute: a second `class=` would be ignored.
            if hasClass, mergeClass(value) { return }
            hasClass = true
        }
        append(Attribute(.known(name), value))
    }

    /// Adds `a` in the next slot (`data-`/`aria-` attributes, and `append(known:)`).
    @inlinable
    mutating func append(_ a: consuming Attribute) {
        switch count {
        case 0: first = a
        case 1: second = a
        case 2: third = a
        case 3:
            // Room for a few more at once: growing from one element reallocated on the next.
            var list: [Attribute] = []
            list.reserveCapacity(4)
            list.append(a)
            more = list
        default: more!.append(a)
        }
        count &+= 1
    }

    /// Appends the class list `value` to the existing class attribute; false if there is none
    /// or `value` is not a class list.
    @usableFromInline
    mutating func mergeClass(_ value: borrowing Attribute.Value) -> Bool {
        guard let extra = value.classText else { return false }
        func merge(_ a: inout Attribute?) -> Bool {
            guard let old = a, case .known(let n) = old.name, Attribute.isClass(n), let v = old.value.classText else { return false }
            a = Attribute(old.name, .text(v.isEmpty ? extra : v + " " + extra))
            return true
        }
        if merge(&first) || merge(&second) || merge(&third) { return true }
        guard var list = more else { return false }
        for i in list.indices {
            var item: Attribute? = list[i]
            if merge(&item) {
                list[i] = item!
                more = list
                return true
            }
        }
        return false
    }

    /// Renders ` name="value"` for each attribute.
    @inlinable
    public func render(into out: inout HTMLOutput) {
        guard let a = first else { return }
        a.render(into: &out)
        guard let b = second else { return }
        b.render(into: &out)
        guard let c = third else { return }
        c.render(into: &out)
        if let more { for m in more { m.render(into: &out) } }
    }
}

/// An element: content plus attributes, set with modifiers (`.id("x")`, `.class("post")`, and
/// each element's own, generated from the attribute table). An attribute the element does not
/// have is a compile-time error ("value of type 'Div<...>' has no member 'href'").
public protocol HTMLElement: HTMLContent {
    /// The attributes given so far.
    var attributes: AttributeList { get set }
}

extension HTMLElement {
    /// Adds an attribute with a text value.
    @inlinable
    public consuming func attribute(_ name: StaticString, text value: String) -> Self {
        adding(name, .text(value))
    }

    @inlinable
    consuming func adding(_ name: StaticString, _ value: consuming Attribute.Value) -> Self {
        // `consume` makes this a move: without it the optimiser copied the whole element (and
        // its subtree) on every modifier.
        var element = consume self
        element.attributes.append(known: name, value)
        return element
    }

    @inlinable
    consuming func adding(_ attribute: consuming Attribute) -> Self {
        var element = consume self
        element.attributes.append(attribute)
        return element
    }

    /// `data-NAME="value"`. `name` must be lower-case letters, digits, `-`, `_` or `.`; any
    /// other name is a programming error, reported and skipped (the page still renders).
    @inlinable
    public consuming func data(_ name: String, _ value: String) -> Self {
        if Attribute.isValidSuffix(name) { return adding(Attribute(.data(name), .text(value))) }
        return self
    }

    /// `aria-NAME="value"` (same rule for `name` as `data`).
    @inlinable
    public consuming func aria(_ name: String, _ value: String) -> Self {
        if Attribute.isValidSuffix(name) { return adding(Attribute(.aria(name), .text(value))) }
        return self
    }

    /// The `style` attribute from typed CSS declarations: `.style(.display(.flex), .gap(.px(4)))`.
    @inlinable
    public consuming func style(_ declarations: CSSDeclaration...) -> Self {
        adding("style", .style(CSSStyle(declarations)))
    }

    /// Adds one class when `condition` holds (for states such as "selected").
    @inlinable @_disfavoredOverload
    public consuming func `class`(_ name: String, if condition: Bool) -> Self {
        condition ? adding("class", .text(name)) : self
    }

    /// Adds one constant class when `condition` holds.
    @inlinable
    public consuming func `class`(_ name: StaticString, if condition: Bool) -> Self {
        condition ? adding("class", .constant(name)) : self
    }
}

extension Attribute.Value {
    /// The text of a class list value (`.text` or `.constant`); nil for other kinds.
    @inlinable
    var classText: String? {
        switch self {
        case .text(let v): v
        case .constant(let v): v.description
        default: nil
        }
    }
}

extension Attribute {
    @inlinable
    static func isClass(_ n: StaticString) -> Bool {
        n.utf8CodeUnitCount == 5 && n.utf8Start[0] == UInt8(ascii: "c") && n.utf8Start[1] == UInt8(ascii: "l")
    }

    @usableFromInline
    static func isValidSuffix(_ name: String) -> Bool {
        guard !name.isEmpty else { return false }
        for b in name.utf8 {
            let ok =
                (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) || b == UInt8(ascii: "-") || b == UInt8(ascii: "_")
                || b == UInt8(ascii: ".")
            if !ok {
                HTMLOutput.reportBadName(name)
                return false
            }
        }
        return true
    }
}

extension HTMLOutput {
    @usableFromInline
    static func reportBadName(_ name: String) {
        reportToStandardError("needletail: attribute name suffix \"\(name)\" is not lower-case letters, digits, '-', '_', '.'; skipped")
    }
}

/// A URL the application vouches for, exempt from the `javascript:`/`data:` check of URL
/// attributes: `.href(trusted: TrustedURL("data:text/html,..."))`.
public struct TrustedURL: ExpressibleByStringLiteral, Sendable {
    public let value: String
    public init(_ value: String) { self.value = value }
    public init(stringLiteral value: String) { self.value = value }
}
