import NeedletailPOSIX
import NeedletailHTTP
import NeedletailHTML
import Synchronization

/// Renders of content that is the same for every viewer, kept per key and version: a live
/// region that does not depend on the viewer is rendered once per change, not once per
/// request (the board's message list for a reader with no posts of their own, say).
public final class RenderCache: Sendable {
    let entries = Mutex<[String: (version: UInt64, html: SharedHTML)]>([:])

    public init() {}

    /// The cached markup for `key` at `version`, rendering it with `build` on a miss.
    /// The markup is shared by reference with every page that shows it (not copied into each).
    public func html<Content: HTMLContent>(_ key: String, version: UInt64, @HTMLBuilder _ build: () -> Content) -> SharedHTML {
        if let hit = entries.withLock({ $0[key] }), hit.version == version { return hit.html }
        let html = SharedHTML(build())
        entries.withLock { $0[key] = (version, html) }
        return html
    }
}
