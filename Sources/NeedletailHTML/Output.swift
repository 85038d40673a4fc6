import NeedletailBytes

/// Where rendering goes: a chunk chain (static markup referenced or coalesced, dynamic text
/// escaped into the chain's own buffer), plus, in debug builds, the ids seen so far so that a
/// duplicate id is reported when the page is rendered.
public struct HTMLOutput {
    /// The markup rendered so far.
    public var chunks: Chunks

    #if DEBUG
    @usableFromInline var ids: Set<String> = []
    /// Ids that appeared more than once (debug builds only; always empty in release builds).
    public internal(set) var duplicateIDs: [String] = []
    #else
    /// Ids that appeared more than once (debug builds only; always empty in release builds).
    public var duplicateIDs: [String] { [] }
    #endif

    /// An output that appends to `chunks`.
    @inlinable
    public init(chunks: Chunks = Chunks()) { self.chunks = chunks }

    /// Appends markup that is a compile-time constant (tag names, fixed attribute names).
    @inlinable @inline(__always)
    public mutating func append(_ markup: StaticString) { chunks.append(markup) }

    /// Appends text content, escaped for element content: `& < >`.
    @inlinable
    public mutating func appendText(_ text: String) {
        var s = text
        s.withUTF8 { utf8 in
            let raw = UnsafeRawBufferPointer(utf8)
            HTMLEscaping.appendText(raw, to: chunks.buffer(reserving: raw.count))
        }
    }

    /// Appends an attribute value (to go between double quotes), escaped: `& " ' < >`.
    @inlinable
    public mutating func appendAttributeValue(_ value: String) {
        var s = value
        s.withUTF8 { utf8 in
            let raw = UnsafeRawBufferPointer(utf8)
            HTMLEscaping.appendEscaped(raw, to: chunks.buffer(reserving: raw.count))
        }
    }

    /// Appends the decimal digits of `value`.
    @inlinable
    public mutating func appendDecimal(_ value: Int) { chunks.append(value) }

    /// Notes an `id` attribute value; in debug builds a value seen before is reported on stderr
    /// and kept in `duplicateIDs`.
    public mutating func noteID(_ id: String) {
        #if DEBUG
        if !ids.insert(id).inserted {
            duplicateIDs.append(id)
            HTMLOutput.reportDuplicate(id)
        }
        #endif
    }

    @usableFromInline
    static func reportDuplicate(_ id: String) {
        var line = "needletail: duplicate id \"\(id)\" in a rendered page (ids must be unique)\n"
        line.withUTF8 { p in _ = fputsBytes(p) }
    }
}

import Glibc
@usableFromInline
func fputsBytes(_ p: UnsafeBufferPointer<UInt8>) -> Int {
    write(2, p.baseAddress, p.count)
}

extension HTMLContent {
    /// Renders this content into a new chunk chain (what a `Response` body is).
    @inlinable
    public func render() -> Chunks {
        var out = HTMLOutput()
        render(into: &out)
        return out.chunks
    }

    /// Renders into a string (tests, logs).
    public func renderedString() -> String { render().string }

    /// Renders into an array of bytes (tests).
    public func renderedBytes() -> [UInt8] { render().bytes }
}

/// Markup rendered once, when first built, into bytes that live for the whole process, and then
/// referenced by every page that includes it (never re-rendered, never re-escaped). Keep one
/// in a `static let`:
///
///     static let header = StaticHTML { Header { H1("Needletail") } }
///
/// It belongs to the same categories as the content it was built from.
public struct StaticHTML<Content: HTMLContent>: HTMLContent, @unchecked Sendable {
    // Immortal on purpose: a page may hold the address in a pending writev at any time.
    @usableFromInline let bytes: UnsafeRawBufferPointer

    /// Renders `content` now, once.
    public init(@HTMLBuilder _ content: () -> Content) {
        let rendered = content().render().bytes
        let p = UnsafeMutableRawBufferPointer.allocate(byteCount: max(rendered.count, 1), alignment: 1)
        p.copyBytes(from: rendered)
        bytes = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(p)[0..<rendered.count])
    }

    /// The rendered markup.
    public var markup: String { String(decoding: bytes, as: UTF8.self) }

    @inlinable
    public func render(into out: inout HTMLOutput) { out.chunks.append(static: bytes) }
}
