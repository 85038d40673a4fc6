import NeedletailBytes

/// Where rendering goes: a chunk chain (static markup referenced or coalesced, dynamic text
/// escaped into the chain's own buffer), plus, in debug builds, the ids seen so far so that a
/// duplicate id is reported when the page is rendered.
public struct HTMLOutput {
    // The output is assembled here directly (not through `Chunks.append`, which checks that
    // its buffer is uniquely referenced on every call): one pooled buffer for the dynamic and
    // small static bytes, and the list of finished links. `chunks` hands the result over.
    @usableFromInline var buffer: ByteBuffer
    @usableFromInline var closed: [Chunks.Part] = []
    @usableFromInline var openStart = 0

    #if DEBUG
        @usableFromInline var ids: Set<String> = []
        /// Ids that appeared more than once (debug builds only; always empty in release builds).
        public internal(set) var duplicateIDs: [String] = []
    #else
        /// Ids that appeared more than once (debug builds only; always empty in release builds).
        public var duplicateIDs: [String] { [] }
    #endif

    /// An empty output, its buffer taken from this thread's `BufferPool`.
    @inlinable
    public init() { buffer = BufferPool.take(capacity: 4096) }

    /// The markup rendered so far, as a chunk chain (a `Response` body).
    @inlinable
    public var chunks: Chunks { Chunks(assembling: closed, buffer: buffer, openStart: openStart) }

    /// Appends markup that is a compile-time constant (tag names, fixed attribute names): copied
    /// if short, referenced if long.
    @inlinable @inline(__always)
    public mutating func append(_ markup: StaticString) {
        if markup.utf8CodeUnitCount < Chunks.coalesceLimit {
            buffer.append(markup)
        } else {
            append(static: UnsafeRawBufferPointer(start: markup.utf8Start, count: markup.utf8CodeUnitCount))
        }
    }

    /// Appends bytes that stay valid and unchanged for the life of the process: referenced if
    /// long (no copy), copied if short.
    @inlinable
    public mutating func append(static bytes: UnsafeRawBufferPointer) {
        if bytes.count < Chunks.coalesceLimit {
            buffer.append(bytes)
        } else {
            appendLink(.immortal(bytes))
        }
    }

    /// Appends markup shared with other outputs (`SharedHTML`): referenced if long (no copy),
    /// copied if short.
    @inlinable
    public mutating func append(shared bytes: SharedBytes) {
        if bytes.count < Chunks.coalesceLimit {
            buffer.append(bytes.bytes)
        } else {
            appendLink(.shared(bytes))
        }
    }

    /// Ends the run of buffered bytes so far as a link, then adds `part` (a referenced chunk).
    @inlinable
    mutating func appendLink(_ part: Chunks.Part) {
        // A referenced chunk comes with the run before it: room for a few at once (growing
        // from one part reallocated on the next).
        if closed.capacity == 0 { closed.reserveCapacity(4) }
        if buffer.count > openStart {
            closed.append(.owned(openStart..<buffer.count))
            openStart = buffer.count
        }
        closed.append(part)
    }

    /// Appends `string` as it is (no escaping): for markup that is already safe.
    @inlinable
    public mutating func append(unescaped string: String) { buffer.append(string: string) }

    /// Appends text content, escaped for element content: `& < >`.
    @inlinable
    public mutating func appendText(_ text: String) {
        text.withUTF8Bytes { HTMLEscaping.appendText(UnsafeRawBufferPointer($0), to: buffer) }
    }

    /// Appends constant text content, escaped for element content: `& < >`.
    @inlinable
    public mutating func appendText(static text: StaticString) {
        HTMLEscaping.appendText(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount), to: buffer)
    }

    /// Appends an attribute value (to go between double quotes), escaped: `& " ' < >`.
    @inlinable
    public mutating func appendAttributeValue(_ value: String) {
        value.withUTF8Bytes { HTMLEscaping.appendEscaped(UnsafeRawBufferPointer($0), to: buffer) }
    }

    /// Appends a constant attribute value, escaped: `& " ' < >`.
    @inlinable
    public mutating func appendAttributeValue(static value: StaticString) {
        HTMLEscaping.appendEscaped(UnsafeRawBufferPointer(start: value.utf8Start, count: value.utf8CodeUnitCount), to: buffer)
    }

    /// Appends the decimal digits of `value`.
    @inlinable
    public mutating func appendDecimal(_ value: Int) { buffer.appendDecimal(value) }

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
        reportToStandardError("needletail: duplicate id \"\(id)\" in a rendered page (ids must be unique)")
    }
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
        bytes = immortalCopy(of: content().render().bytes)
    }

    /// The rendered markup.
    public var markup: String { String(decoding: bytes, as: UTF8.self) }

    @inlinable
    public func render(into out: inout HTMLOutput) { out.append(static: bytes) }
}
