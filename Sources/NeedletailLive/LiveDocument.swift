import NeedletailHTML

/// A whole live page: `<!DOCTYPE html>`, `<html lang>`, a head with the charset, the title,
/// the app's own head content and the client runtime's script, and a body ending with the
/// runtime's status element. Made by `Page.document`, so that a live page cannot forget the
/// two pieces without which it silently stops being live.
public struct LiveDocument<HeadContent: MetadataContent, BodyContent: FlowContent>: HTMLContent {
    @usableFromInline let title: String
    @usableFromInline let lang: String
    @usableFromInline let head: HeadContent
    @usableFromInline let body: BodyContent
    /// The runtime's `<script>` element, rendered once for the process (`Page.runtimeHTML`).
    @usableFromInline let runtime: SharedHTML
    @usableFromInline let status: LiveStatus
    /// The build's errors in development mode (nil otherwise).
    @usableFromInline let build: LiveRegion<BuildErrors>?

    @inlinable
    init(
        title: String, lang: String, head: consuming HeadContent, body: consuming BodyContent, runtime: SharedHTML, status: LiveStatus,
        build: LiveRegion<BuildErrors>? = nil
    ) {
        (self.title, self.lang, self.head, self.body, self.runtime, self.status) = (title, lang, head, body, runtime, status)
        self.build = build
    }

    /// The same bytes as `Html { Head { Meta().charset("utf-8"); Title(title); head; runtime }
    /// Body { body; status } }.lang(lang)`, written directly: building that tree at render time
    /// copied the page's whole head and body into it (docs/PERFORMANCE.md).
    @inlinable
    public func render(into out: inout HTMLOutput) {
        out.append("<!DOCTYPE html>\n<html lang=\"")
        out.appendAttributeValue(lang)
        out.append("\"><head><meta charset=\"utf-8\"><title>")
        out.appendText(title)
        out.append("</title>")
        head.render(into: &out)
        runtime.render(into: &out)
        out.append("</head><body>")
        if let build { build.render(into: &out) }
        body.render(into: &out)
        status.render(into: &out)
        out.append("</body></html>")
    }
}

extension Page {
    /// The page as a live document titled `title`: `head` adds to the head (style sheets, an
    /// icon), `body` is the page's content; the runtime's script and status element are added
    /// (`transport`: how the runtime follows the channels).
    ///
    /// ```swift
    /// app.page("/counter") { page in
    ///     .html(page.document(title: "Counter") {
    ///         page.live("count", channels: [.counter]) { _ in P { counter.value } }
    ///     })
    /// }
    /// ```
    @inlinable
    public func document<H: MetadataContent, B: FlowContent>(
        title: String, lang: String = "en", transport: Transport = .events,
        @HTMLBuilder head: () -> H, @HTMLBuilder body: () -> B
    ) -> LiveDocument<H, B> {
        let h = head()
        // The body first: its regions record the versions the status element then carries.
        let build = developmentRegion()
        let b = body()
        return LiveDocument(
            title: title, lang: lang, head: consume h, body: consume b, runtime: Page.runtimeHTML, status: liveStatus(transport: transport),
            build: build)
    }

    /// The same with nothing added to the head.
    @inlinable
    public func document<B: FlowContent>(
        title: String, lang: String = "en", transport: Transport = .events,
        @HTMLBuilder body: () -> B
    ) -> LiveDocument<EmptyHTML, B> {
        document(title: title, lang: lang, transport: transport, head: { EmptyHTML() }, body: body)
    }

    /// Bumps `channel` (see `Channels.notify`): for a page whose visit changes what others see.
    public func notify(_ channel: Channel) { app.channels.notify(channel) }
}
