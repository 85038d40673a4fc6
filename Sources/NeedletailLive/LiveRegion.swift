import NeedletailPOSIX
import NeedletailHTTP
import NeedletailHTML

/// `<div id=... data-nt-live>`: a live region (see `Page.live`).
public struct LiveRegion<Content: FlowContent>: FlowContent {
    @usableFromInline let id: String
    @usableFromInline let content: Content
    @inlinable init(id: String, content: Content) {
        self.id = id
        self.content = content
    }
    @inlinable public func render(into out: inout HTMLOutput) {
        // `<div id="…" data-nt-live="">`, written directly: once per subscriber on each change
        // (docs/PERFORMANCE.md).
        out.noteID(id)
        out.append("<div id=\"")
        out.appendAttributeValue(id)
        out.append("\" data-nt-live=\"\">")
        content.render(into: &out)
        out.append("</div>")
    }
}
extension LiveRegion: NonInteractive where Content: NonInteractive {}
extension LiveRegion: FormFree where Content: FormFree {}
