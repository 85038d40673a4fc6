import NeedletailPOSIX
import NeedletailHTTP
import NeedletailHTML

/// A hidden `_s` field with the session id, only when the browser did not send the cookie.
public struct SessionField: FlowContent, PhrasingContent, NonInteractive, FormFree {
    let id: String?
    @usableFromInline init(id: String?) { self.id = id }
    public func render(into out: inout HTMLOutput) {
        if let id { Input().type(.hidden).name("_s").value(id).render(into: &out) }
    }
}
