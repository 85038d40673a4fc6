import NeedletailPOSIX
import NeedletailHTTP
import NeedletailBytes
import NeedletailHTML
import Synchronization

/// One rendered page of one session: the actions and live regions it registered. Kept for the
/// session's last `viewsKept` pages, so that the back button finds working forms.
public final class LiveView: Sendable {
    /// Random id, carried by the page (`data-nt-view`) and by its polls.
    public let id: String
    /// Where a browser without JavaScript goes back to after an action (POST, redirect, GET).
    public let path: String
    let state = Mutex(ViewState())
    /// How many actions `state` holds, kept by every change to them, so that counting a
    /// session's actions after each render takes no lock per view.
    let storedActions = Atomic<Int>(0)

    struct ViewState {
        /// In the order they were registered; found by a linear search (a page has a handful,
        /// and making a dictionary on every page view cost more than all its lookups).
        var actions: [(id: String, action: Action)] = []
        var regions: [Region] = []
    }

    /// An action's handler: it runs on the loop that received its POST; an async one may
    /// await (a durable write, a database) while the loop serves others.
    enum Run: Sendable {
        case sync(@Sendable (ActionContext) throws -> Void)
        case async(AsyncAction)
    }

    struct Action {
        let run: Run
        /// The live region whose render registered it (nil: outside any region), and which
        /// render: a region's actions are dropped once it has been rendered twice since, so
        /// that a page open for days, whose regions are re-rendered on every change, keeps
        /// only the actions of what it shows (and of the render before, for a click in flight).
        var region: String? = nil
        var render = 0
    }

    /// Drops the actions that renders of region `id` older than `render - 1` registered.
    func dropActions(of id: String, before render: Int) {
        state.withLock { st in
            st.actions.removeAll { $0.action.region == id && $0.action.render < render - 1 }
            storedActions.store(st.actions.count, ordering: .relaxed)
        }
    }

    @usableFromInline
    final class Region: Sendable {
        let id: String
        let channels: [Channel]
        /// Renders the region for a viewer straight into an answer (no intermediate copy).
        let render: @Sendable (Page, inout HTMLOutput) -> Void
        /// Renders so far (0: the page's own; updates count from 1).
        let renders = Atomic<Int>(0)
        /// Whether a render of the region has registered actions.
        let hasActions = Atomic<Bool>(false)

        init(id: String, channels: [Channel], render: @escaping @Sendable (Page, inout HTMLOutput) -> Void) {
            self.id = id
            self.channels = channels
            self.render = render
        }
    }

    init(path: String) {
        id = randomID()
        self.path = path
    }

    var actionCount: Int { storedActions.load(ordering: .relaxed) }

    /// Adds an action (`Page.register`).
    func add(action id: String, _ action: Action) {
        state.withLock { st in
            st.actions.append((id, action))
            storedActions.store(st.actions.count, ordering: .relaxed)
        }
    }

    /// Drops every action (the session has too many); how many there were.
    func dropAllActions() -> Int {
        state.withLock { st in
            let n = st.actions.count
            st.actions.removeAll()
            storedActions.store(0, ordering: .relaxed)
            return n
        }
    }

    /// The action registered as `id`, if this view still has it.
    func action(_ id: String) -> Action? {
        state.withLock { st in st.actions.first { $0.id == id }?.action }
    }
}
