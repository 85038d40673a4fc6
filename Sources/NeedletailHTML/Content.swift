import NeedletailBytes

// The content model of HTML5 expressed as Swift protocols, so that the type checker refuses a
// tag where the content model forbids it. An element's generic `Content` parameter is
// constrained to the category its children must belong to (`P` takes `PhrasingContent`, `Ul`
// takes `ListItemContent`, ...), and the builder's tuple, optional, conditional and loop types
// belong to a category only when every child does (conditional conformances). Two marker
// protocols carry "no descendant of this kind" rules through any depth: `NonInteractive` (no `a`,
// `button`, `input`, ... inside `a` or `button`) and `FormFree` (no `form` inside `form`).

/// Anything that renders as HTML.
public protocol HTMLContent {
    /// Appends this content's markup to `out`.
    func render(into out: inout HTMLOutput)
}

/// Flow content: what `body`, `div`, `li`, `td` and most containers accept.
public protocol FlowContent: HTMLContent {}
/// Phrasing content: text and inline elements; what `p`, `span`, headings and labels accept.
public protocol PhrasingContent: FlowContent {}
/// Content with no interactive element (`a`, `button`, `input`, `select`, `textarea`, `label`,
/// `iframe`, `details`, ...) at any depth: what `a` and `button` accept.
public protocol NonInteractive: HTMLContent {}
/// Content with no `form` at any depth: what `form` accepts.
public protocol FormFree: HTMLContent {}
/// Children of `html`: `head` and `body`.
public protocol DocumentContent: HTMLContent {}
/// Metadata: children of `head` (`title`, `meta`, `link`, `style`, `script`, `base`).
public protocol MetadataContent: HTMLContent {}
/// Children of `ul`, `ol` and `menu`: `li`.
public protocol ListItemContent: HTMLContent {}
/// Children of `dl`: `dt`, `dd`.
public protocol DescriptionListContent: HTMLContent {}
/// Children of `table`: `caption`, `colgroup`, `thead`, `tbody`, `tfoot`.
public protocol TableContent: HTMLContent {}
/// Children of `thead`, `tbody`, `tfoot`: `tr`.
public protocol TableRowContent: HTMLContent {}
/// Children of `tr`: `th`, `td`.
public protocol TableCellContent: HTMLContent {}
/// Children of `colgroup`: `col`.
public protocol ColumnContent: HTMLContent {}
/// Children of `select` and `datalist`: `option`, `optgroup`.
public protocol SelectContent: HTMLContent {}
/// Children of `optgroup`: `option`.
public protocol OptionContent: HTMLContent {}

// MARK: - Text

extension String: PhrasingContent, NonInteractive, FormFree {
    /// Text content, escaped (`& < >`).
    @inlinable
    public func render(into out: inout HTMLOutput) { out.appendText(self) }
}

extension Substring: PhrasingContent, NonInteractive, FormFree {
    /// Text content, escaped (`& < >`).
    @inlinable
    public func render(into out: inout HTMLOutput) { out.appendText(String(self)) }
}

extension Int: PhrasingContent, NonInteractive, FormFree {
    /// The decimal digits (nothing to escape).
    @inlinable
    public func render(into out: inout HTMLOutput) { out.appendDecimal(self) }
}

/// Text that is a compile-time constant (a string literal in a builder): escaped when rendered
/// like any text, but never copied into a `String` or reference-counted.
public struct StaticText: PhrasingContent, NonInteractive, FormFree, Sendable {
    @usableFromInline let text: StaticString
    /// Text content from a literal.
    @inlinable
    public init(_ text: StaticString) { self.text = text }
    @inlinable
    public func render(into out: inout HTMLOutput) { out.appendText(static: text) }
}

/// Markup inserted as is, without escaping: the only way around escaping, so it is easy to
/// find in a review. Use it for markup the application itself produced and trusts.
public struct RawHTML: PhrasingContent, NonInteractive, FormFree {
    @usableFromInline let markup: String
    /// `markup` will be sent byte for byte.
    public init(_ markup: String) { self.markup = markup }
    @inlinable
    public func render(into out: inout HTMLOutput) { out.append(unescaped: markup) }
}

/// Content rendered once into bytes that any number of pages (on any thread) then include by
/// reference: no re-rendering, no copy into each page. What `RenderCache` hands out. Unlike
/// `StaticHTML` the bytes are freed when the last page that holds them has been sent.
public struct SharedHTML: PhrasingContent, NonInteractive, FormFree, Sendable {
    /// The rendered markup.
    public let bytes: SharedBytes
    /// Renders `content` now, once.
    public init(_ content: some HTMLContent) {
        let chunks = content.render()
        bytes = chunks.bytes.withUnsafeBytes { SharedBytes(copying: $0) }
    }
    /// The rendered markup as a string (tests).
    public var markup: String { String(decoding: bytes.bytes, as: UTF8.self) }
    @inlinable
    public func render(into out: inout HTMLOutput) { out.append(shared: bytes) }
}

/// An HTML comment. Its text can never end the comment early: `--` and a leading `>` or `->`
/// are broken up, so `<!--` content from anywhere is safe.
public struct Comment: PhrasingContent, NonInteractive, FormFree, MetadataContent, ListItemContent,
    TableContent, TableRowContent, TableCellContent, SelectContent, OptionContent, DescriptionListContent
{
    @usableFromInline let text: String
    public init(_ text: String) { self.text = text }
    public func render(into out: inout HTMLOutput) {
        out.append("<!--")
        out.append(unescaped: HTMLEscaping.commentSafe(text))
        out.append("-->")
    }
}

// MARK: - Builder

/// Builds HTML content from the statements of a closure: sequences, `if`/`else`, `if let`,
/// `switch` and `for` loops. Which children are allowed is decided by the element the closure
/// belongs to, through the category protocols.
@resultBuilder
public enum HTMLBuilder {
    // A string literal becomes `StaticText` (its bytes are a compile-time constant, never
    // retained or released); every other expression stays as it is. The generic overload is
    // disfavoured so that a literal does not default to `String` (docs/PERFORMANCE.md).
    @inlinable @_disfavoredOverload
    public static func buildExpression<Content: HTMLContent>(_ content: consuming Content) -> Content { content }

    @inlinable
    public static func buildExpression(_ text: StaticString) -> StaticText { StaticText(text) }

    @inlinable
    public static func buildBlock() -> EmptyHTML { EmptyHTML() }

    // Sequences are built pairwise (`buildPartialBlock`) into nested `HTMLPair`s rather than one
    // variadic tuple: nested concrete generics specialise fully across modules (parameter
    // packs went through runtime metadata; docs/PERFORMANCE.md).
    @inlinable
    public static func buildPartialBlock<Content: HTMLContent>(first: consuming Content) -> Content { first }

    @inlinable
    public static func buildPartialBlock<Accumulated: HTMLContent, Next: HTMLContent>(
        accumulated: consuming Accumulated, next: consuming Next
    ) -> HTMLPair<Accumulated, Next> {
        HTMLPair(accumulated, next)
    }

    @inlinable
    public static func buildOptional<Content: HTMLContent>(_ content: consuming Content?) -> Content? { content }

    @inlinable
    public static func buildEither<First: HTMLContent, Second: HTMLContent>(first: consuming First) -> HTMLEither<First, Second> {
        .first(first)
    }

    @inlinable
    public static func buildEither<First: HTMLContent, Second: HTMLContent>(second: consuming Second) -> HTMLEither<First, Second> {
        .second(second)
    }

    /// `for` loops build an array (one allocation per loop); `ForEach` builds none.
    @inlinable
    public static func buildArray<Content: HTMLContent>(_ content: consuming [Content]) -> [Content] { content }

    @inlinable
    public static func buildLimitedAvailability<Content: HTMLContent>(_ content: consuming Content) -> Content { content }
}

/// Nothing: renders no bytes and fits any context.
public struct EmptyHTML: PhrasingContent, NonInteractive, FormFree, DocumentContent, MetadataContent,
    ListItemContent, DescriptionListContent, TableContent, TableRowContent, TableCellContent,
    ColumnContent, SelectContent, OptionContent, MediaContent
{
    @inlinable public init() {}
    @inlinable public func render(into out: inout HTMLOutput) {}
}

/// Two children in order; longer sequences nest (`HTMLPair<HTMLPair<A, B>, C>`).
public struct HTMLPair<First: HTMLContent, Second: HTMLContent>: HTMLContent {
    @usableFromInline let first: First
    @usableFromInline let second: Second
    @inlinable
    public init(_ first: First, _ second: Second) {
        self.first = first
        self.second = second
    }
    @inlinable
    public func render(into out: inout HTMLOutput) {
        first.render(into: &out)
        second.render(into: &out)
    }
}

/// One of two alternatives (`if`/`else`, `switch`).
public enum HTMLEither<First: HTMLContent, Second: HTMLContent>: HTMLContent {
    case first(First)
    case second(Second)
    @inlinable
    public func render(into out: inout HTMLOutput) {
        switch self {
        case .first(let c): c.render(into: &out)
        case .second(let c): c.render(into: &out)
        }
    }
}

extension Optional: HTMLContent where Wrapped: HTMLContent {
    @inlinable
    public func render(into out: inout HTMLOutput) {
        if let c = self { c.render(into: &out) }
    }
}

extension Array: HTMLContent where Element: HTMLContent {
    @inlinable
    public func render(into out: inout HTMLOutput) {
        for c in self { c.render(into: &out) }
    }
}

/// Content repeated for each element of a sequence, without building an array: the closure is
/// called while rendering.
public struct ForEach<Items: Sequence, Content: HTMLContent>: HTMLContent {
    @usableFromInline let items: Items
    @usableFromInline let content: (Items.Element) -> Content
    @inlinable
    public init(_ items: Items, @HTMLBuilder content: @escaping (Items.Element) -> Content) {
        self.items = items
        self.content = content
    }
    @inlinable
    public func render(into out: inout HTMLOutput) {
        for item in items { content(item).render(into: &out) }
    }
}

// The category conformances of the combinators (a combination belongs to a category when every
// part does) are generated: Generated/Combinators.swift.

/// Children of `video` and `audio`: `source`, `track`.
public protocol MediaContent: HTMLContent {}

/// What a `<script>` element may hold: JavaScript built with NeedletailJS, or JSON data. Both
/// encode every string literal with `<`, `>` and `&` escaped, so no `</script` can appear.
public protocol ScriptBody {
    /// The script's text.
    var scriptText: String { get }
}

/// Checks on the text of raw-text elements (`script`, `style`).
public enum RawText {
    /// `text` if it cannot end its element early or open a comment (`</script`, `</style`,
    /// `<!--`, in any letter case); otherwise a comment saying it was refused, and a report on
    /// stderr. Typed builders never produce such text; this is the last line of defence.
    public static func checked(_ text: String, element: StaticString) -> String {
        let lower = text.lowercased()
        if lower.contains("</" + element.description) || lower.contains("<!--") {
            HTMLOutput.reportBadRawText(element.description)
            return "/* needletail: refused content that could end the <\(element)> element */"
        }
        return text
    }
}

extension HTMLOutput {
    static func reportBadRawText(_ element: String) {
        reportToStandardError("needletail: refused <\(element)> content containing </\(element) or <!--")
    }
}
