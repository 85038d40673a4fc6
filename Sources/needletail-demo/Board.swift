import Glibc
import Needletail
import Synchronization

// The message board: forums and posts as records, one live page. Every open viewer sees a
// post (or a deletion) appear without reloading; without JavaScript, forms post and redirect.

struct Forum: Record {
    static let typeName = "forum"
    var name: String
    init(name: String) { self.name = name }
    func encode(to w: inout RecordWriter) { w.write(1, name) }
    init(from r: RecordReader) throws(StoreError) { name = try r.string(1) }
}

struct Post: Record {
    static let typeName = "post"
    var forum: String, author: String, time: Int, text: String
    init(forum: String, author: String, time: Int, text: String) {
        (self.forum, self.author, self.time, self.text) = (forum, author, time, text)
    }
    func encode(to w: inout RecordWriter) { w.write(1, forum); w.write(2, author); w.write(3, time); w.write(4, text) }
    init(from r: RecordReader) throws(StoreError) {
        (forum, author, time, text) = (try r.string(1), try r.string(2), try r.int(3), try r.string(4))
    }
}

enum Board {
    static let sheet = Stylesheet {
        CSSRule(.tag(.body), .fontFamily(.systemUI, .sansSerif), .maxWidth(.em(50)), .margin(0, .auto), .padding(.em(1)))
        CSSRule(.tag(.nav).descendant(.tag(.li)), .display(.inline), .marginRight(.em(1)))
        CSSRule(.class("current"), .fontWeight(.bold))
        CSSRule(.class("author"), .fontWeight(.w600))
        CSSRule(.tag(.time), .color(.gray))
        CSSRule(.class("nt-link"), .backgroundColor(.transparent), .borderStyle(.none), .color(.blue), .cursor(.pointer))
        CSSRule(.tag(.form).and(.class("inline")), .display(.inline))
    }

    /// The log store's records, opened on the first visit to the board (so that processes that
    /// never show it, such as CGI runs of other pages, never take the store's lock).
    final class LogRecords: BoardRecords {
        let forums: RecordTable<Forum>, posts: RecordTable<Post>
        let byForum: IndexHandle<Post, String>, byAuthor: IndexHandle<Post, String>
        /// The forums' names (they never change while the app runs), and their addresses.
        let names: [String]
        let links: [String]
        let store: Store
        init(folder: String, lockTimeout: Double) throws {
            try Self.makeFolder(folder)
            store = try Store(path: folder + "/board.log", fsync: .always, lockTimeout: lockTimeout)
            forums = try store.table(Forum.self)
            posts = try store.table(Post.self, indexes: [Index(\Post.forum), Index(\Post.author)])
            (byForum, byAuthor) = (posts.index(\Post.forum), posts.index(\Post.author))
            if forums.count == 0 { for name in Board.forums { _ = try forums.insert(Forum(name: name)) } }
            names = forums.all().map(\.record.name)
            links = names.map(Board.link(to:))
        }

        func posts(in forum: String) -> [(id: Int, record: Post)] { posts.lookup(byForum, forum) }

        func hasPosts(by author: String, in forum: String) -> Bool {
            posts.lookup(byAuthor, author).contains { $0.record.forum == forum }
        }

        func add(_ post: Post, _ action: ActionContext) async throws {
            // Acknowledged (the redirect, or 204) only once durable; a failure is a 500.
            _ = try await posts.insert(post)
            action.notify(.forum(post.forum))
        }

        func delete(_ id: Int, by author: String, _ action: ActionContext) async throws {
            guard let post = posts.get(id), post.author == author else { return }
            try await posts.delete(id)
            action.notify(.forum(post.forum))
        }

        /// Creates the data folder if missing, saying which folder and why when it cannot.
        static func makeFolder(_ folder: String) throws(StoreError) {
            var s = stat()
            if stat(folder, &s) == 0 {
                guard (s.st_mode & S_IFMT) == S_IFDIR else { throw StoreError.io("\(folder) is not a folder (pass --data DIR)") }
                return
            }
            guard mkdir(folder, 0o750) == 0 || errno == EEXIST else {
                let reason = String(cString: strerror(errno))
                throw StoreError.io(
                    "cannot create the data folder \(folder): \(reason) (pass --data DIR, a folder that uid \(getuid()) can write)")
            }
        }
    }

    /// The forums a new board starts with.
    static let forums = ["Ubuntu", "Gentoo", "Debian"]

    /// The log store once open (what a live upgrade hands over), and how long opening it
    /// waits for another process to let go of it.
    final class LogStoreHandle: Sendable {
        let lockTimeout: Double
        let store = Mutex<Store?>(nil)
        init(lockTimeout: Double = 5) { self.lockTimeout = lockTimeout }
    }

    /// Where the board keeps its records.
    enum Source: Sendable {
        /// The log store in this folder (one backend); `handle` holds it once open.
        case log(folder: String, handle: LogStoreHandle = LogStoreHandle())
        /// PostgreSQL, opened already (several backends).
        case postgres(PostgresBoard)
    }

    /// `syncWrites`: posts block their loop until durable (the synchronous store API), for the
    /// benchmark that compares it with the async path the board uses (log store only).
    static func install(into app: inout LiveApp, source: Source, openNow: Bool, syncWrites: Bool = false,
                        onError: @escaping @Sendable (String) -> Void) {
        let opened = Mutex<(any BoardRecords)?>(nil)
        /// The records, opened on first use; nil (and the reason logged) when they cannot be.
        @Sendable func records() -> (any BoardRecords)? {
            opened.withLock { r -> (any BoardRecords)? in
                if r == nil {
                    switch source {
                    case .postgres(let board): r = board
                    case .log(let folder, let handle):
                        do {
                            let records = try LogRecords(folder: folder, lockTimeout: handle.lockTimeout)
                            handle.store.withLock { $0 = records.store }
                            r = records
                        } catch {
                            onError("cannot open the board's records in \(folder): \(error)")
                        }
                    }
                }
                return r
            }
        }
        if openNow { _ = records() }
        let css = app.stylesheet("/board.css", sheet)
        let cache = RenderCache()
        app.page("/board") { page in
            guard let records = records() else {
                return Router.errorPage(.serviceUnavailable, detail: "The board's records cannot be opened; the server log says why.")
            }
            // URL options: read from the query alone (no form body or cookie to look through).
            let asked = try page.request.queryParameter("forum", default: "Debian")
            let forum = records.names.contains(asked) ? asked : "Debian"
            let transport = try page.request.queryParameter("transport", default: Page.Transport.events)
            let channel = Channel.forum(forum)  // made once: the region follows it, the cache asks its version
            return .html(
                page.document(title: "Board: " + forum, transport: transport) {
                    Link().rel("stylesheet").href(css)
                    Link().rel("icon").href(trusted: "data:,")  // no favicon request (and no 404 in the console)
                } body: {
                    ForumNav(page: page, forums: records.names, links: records.links, current: forum)
                    H1 {
                        "Forum "; forum
                    }
                    P {
                        "You post as "; Strong(page.session.userName); "."
                    }
                    PostForm(page: page, forum: forum, records: records, syncWrites: syncWrites)
                    page.live("messages", channels: [channel]) { page in
                        Messages(page: page, forum: forum, channel: channel, records: records, cache: cache)
                    }
                })
        }
    }

    /// "2026-11-27 06:05 UTC", or for a `<time datetime>` (`machine`) "2026-11-27T06:05Z".
    static func utc(_ t: Int, machine: Bool = false) -> String {
        var tm = tm()
        var tt = time_t(t)
        gmtime_r(&tt, &tm)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let date = "\(tm.tm_year + 1900)-\(two(tm.tm_mon + 1))-\(two(tm.tm_mday))", time = "\(two(tm.tm_hour)):\(two(tm.tm_min))"
        return machine ? date + "T" + time + "Z" : date + " " + time + " UTC"
    }
}

extension Channel {
    /// The channel of a forum's messages.
    static func forum(_ name: String) -> Channel { Channel("forum:" + name) }
}

/// The forums, the current one marked. `links[i]` is the address of `forums[i]`, made once
/// (`Board.link(to:)`) rather than for every link of every page.
struct ForumNav: FlowComponent {
    let page: Page, forums: [String], links: [String], current: String

    var body: some FlowContent {
        Nav {
            Ul {
                ForEach(forums.indices) { i in
                    Li { A(forums[i]).href(page.url(links[i])).class("current", if: forums[i] == current) }
                }
            }
        }
    }
}

extension Board {
    /// `/board?forum=NAME`, the name percent-encoded (anything but unreserved characters).
    static func link(to forum: String) -> String {
        "/board?forum=" + PercentEncoding.encoded(forum, keeping: PercentEncoding.isUnreserved)
    }
}

/// The form that posts a message, as this session's user.
struct PostForm: FlowComponent {
    let page: Page, forum: String, records: any BoardRecords, syncWrites: Bool

    var body: some FlowContent {
        let (forum, records, me) = (forum, records, page.session.userName)
        if syncWrites, let log = records as? Board.LogRecords {
            page.actionForm({ action in
                guard let p = Self.post(action, forum: forum, author: me) else { return }
                _ = try log.posts.insert(p)  // blocks the loop until durable
                action.notify(.forum(forum))
            }) { Self.fields }
        } else {
            page.actionForm({ action async throws in
                guard let p = Self.post(action, forum: forum, author: me) else { return }
                try await records.add(p, action)
            }) { Self.fields }
        }
    }
}

extension PostForm {
    /// The form's fields hold nothing that changes: rendered once for the process and then
    /// included by reference (`StaticHTML`), as an app author marks constant markup.
    static let fields = StaticHTML { PostFields() }

    /// The post the form holds; nil when there is nothing to post.
    static func post(_ action: ActionContext, forum: String, author: String) -> Post? {
        guard let text = action.form["text"], !text.isEmpty, text.utf8.count <= 2000 else { return nil }
        return Post(forum: forum, author: author, time: Int(time(nil)), text: text)
    }
}

/// The message field and the button.
struct PostFields: FlowComponent, FormFreeComponent {
    var body: some FlowContent & FormFree {
        Input().type(.text).name("text").required().maxlength(2000).placeholder("Message")
        Button("Post").type(.submit)
    }
}

/// A forum's messages as its reader sees them: with a delete button on the reader's own; for a
/// reader with none of their own, the list every such reader sees, rendered once per change.
struct Messages: FlowComponent {
    let page: Page, forum: String, channel: Channel, records: any BoardRecords, cache: RenderCache

    var body: some FlowContent {
        let me = page.session.userName
        if records.hasPosts(by: me, in: forum) {
            MessageList(posts: records.posts(in: forum), deletable: (page, me, records))
        } else {
            cache.html(forum, version: page.version(channel)) {
                MessageList(posts: records.posts(in: forum), deletable: nil)
            }
        }
    }
}

/// Messages, newest first; `deletable` gives the posts of one author a delete button.
struct MessageList: FlowComponent {
    let posts: [(id: Int, record: Post)]
    let deletable: (page: Page, author: String, records: any BoardRecords)?

    var body: some FlowContent {
        Ol {
            ForEach(posts) { p in
                Li {
                    Span(p.record.author).class("author"); " ";
                    Time(Board.utc(p.record.time)).datetime(Board.utc(p.record.time, machine: true)); " "; p.record.text
                    if let (page, author, records) = deletable, p.record.author == author {
                        " "
                        page.actionButton("delete") { action async throws in try await records.delete(p.id, by: author, action) }
                            .class("inline")
                    }
                }.id("m\(p.id)")
            }
        }
    }
}

/// What the board needs of its store: the posts of a forum from memory (pages and live
/// regions render synchronously), and writes that return once durable and notified.
protocol BoardRecords: Sendable {
    /// The forums' names.
    var names: [String] { get }
    /// Their addresses (`Board.link(to:)`), in the same order.
    var links: [String] { get }
    /// The forum's posts, oldest first.
    func posts(in forum: String) -> [(id: Int, record: Post)]
    /// Whether `author` has a post in `forum` (then their list has delete buttons).
    func hasPosts(by author: String, in forum: String) -> Bool
    /// Adds `post`, durable, and tells its forum's viewers.
    func add(_ post: Post, _ action: ActionContext) async throws
    /// Deletes post `id` if `author` wrote it, and tells its forum's viewers.
    func delete(_ id: Int, by author: String, _ action: ActionContext) async throws
}
