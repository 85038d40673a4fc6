import NeedletailPOSIX
import NeedletailHTTP
import NeedletailHTML

/// `<div id="nt-status" data-nt-view=… data-nt-channels="name|version;…" data-nt-transport=…
/// aria-live="polite"></div>`: the runtime's anchor (see `Page.liveStatus`). When the browser
/// sent no session cookie it also carries the session id (`data-nt-s`), which the runtime adds
/// to its polls if the browser refuses cookies.
public struct LiveStatus: FlowContent, NonInteractive, FormFree {
    let view: String
    let versions: ChannelVersions
    let transport: Page.Transport
    let session: String?

    public func render(into out: inout HTMLOutput) {
        // Written directly, not through the DSL: on every page (docs/PERFORMANCE.md).
        out.noteID("nt-status")
        out.append("<div id=\"nt-status\" data-nt-view=\"")
        out.appendAttributeValue(view)
        out.append("\" data-nt-channels=\"")
        out.appendChannelVersions(versions)
        out.append("\" data-nt-transport=\"")
        out.appendAttributeValue(transport.rawValue)
        if let session {
            out.append("\" data-nt-s=\"")
            out.appendAttributeValue(session)
        }
        out.append("\" aria-live=\"polite\"></div>")
    }
}
