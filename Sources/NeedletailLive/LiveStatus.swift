import NeedletailPOSIX
import NeedletailHTTP
import NeedletailHTML

/// `<div id="nt-status" data-nt-view=… data-nt-channels="name|version;…" data-nt-transport=…
/// aria-live="polite"></div>`: the runtime's anchor (see `Page.liveStatus`). When the browser
/// sent no session cookie it also carries the session id (`data-nt-s`), which the runtime adds
/// to its polls if the browser refuses cookies.
public struct LiveStatus: FlowContent, NonInteractive, FormFree {
    let view: String
    let versions: [(String, UInt64)]
    let transport: Page.Transport
    let session: String?

    public func render(into out: inout HTMLOutput) {
        // Written directly, like a live region: through the DSL (a joined string of the
        // versions, four validated data-/aria- names) it was about 6,600 of the board page's
        // 90,000 instructions.
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

extension HTMLOutput {
    /// `name|version;name|version…` inside an attribute value: what pages carry in
    /// `data-nt-channels` and answers in `data-nt-versions`, and polls send back.
    mutating func appendChannelVersions(_ versions: [(String, UInt64)]) {
        appendChannelVersions(count: versions.count) { versions[$0] }
    }

    /// The same for the channels named in `known` at the versions `current`.
    mutating func appendChannelVersions(_ known: [(String, UInt64)], _ current: [UInt64]) {
        appendChannelVersions(count: known.count) { (known[$0].0, current[$0]) }
    }

    private mutating func appendChannelVersions(count: Int, _ pair: (Int) -> (String, UInt64)) {
        for i in 0..<count {
            if i > 0 { append(";") }
            let (name, version) = pair(i)
            appendAttributeValue(name)
            append("|")
            appendDecimal(Int(truncatingIfNeeded: version))
        }
    }
}
