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

    /// The records, opened on the first visit to the board (so that processes that never show
    /// it, such as CGI runs of other pages, never take the store's lock).
    final class Records: Sendable {
        let forums: RecordTable<Forum>, posts: RecordTable<Post>
        let byForum: IndexHandle<Post, String>, byAuthor: IndexHandle<Post, String>
        /// The forums' names (they never change while the app runs).
        let names: [String]
        init(folder: String) throws {
            try Self.makeFolder(folder)
            let store = try Store(path: folder + "/board.log", fsync: .always)
            forums = try store.table(Forum.self)
            posts = try store.table(Post.self, indexes: [Index(\Post.forum), Index(\Post.author)])
            (byForum, byAuthor) = (posts.index(\Post.forum), posts.index(\Post.author))
            if forums.count == 0 { for name in ["Ubuntu", "Gentoo", "Debian"] { _ = try forums.insert(Forum(name: name)) } }
            names = forums.all().map(\.record.name)
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
                throw StoreError.io("cannot create the data folder \(folder): \(reason) (pass --data DIR, a folder that uid \(getuid()) can write)")
            }
        }
    }

    static func install(into app: inout LiveApp, folder: String, openNow: Bool, onError: @escaping @Sendable (String) -> Void) {
        let opened = Mutex<Records?>(nil)
        /// The records, opened on first use; nil (and the reason logged) when they cannot be.
        @Sendable func records() -> Records? {
            opened.withLock { r -> Records? in
                if r == nil {
                    do { r = try Records(folder: folder) } catch { onError("cannot open the board's records in \(folder): \(error)") }
                }
                return r
            }
        }
        if openNow { _ = records() }
        let channels = app.channels
        let css = app.stylesheet("/board.css", sheet)
        let cache = RenderCache()
        app.page("/board") { page in
            guard let records = records() else {
                return Router.errorPage(.serviceUnavailable, detail: "The board's records cannot be opened; the server log says why.")
            }
            let (names, posts) = (records.names, records.posts)
            let asked = try page.request.parameter("forum", default: "Debian")
            let forum = names.contains(asked) ? asked : "Debian", channel = "forum:" + forum
            let transport = try page.request.parameter("transport", default: Page.Transport.events)
            let me = page.session.userName
            return .html(Html {
                Head {
                    Meta().charset("utf-8"); Title("Board: " + forum); Link().rel("stylesheet").href(css); page.runtimeScript
                    Link().rel("icon").href(trusted: "data:,")  // no favicon request (and no 404 in the console)
                }
                Body {
                    Nav { Ul { ForEach(names) { n in Li { A(n).href(page.url("/board?forum=" + n)).class("current", if: n == forum) } } } }
                    H1 { "Forum "; forum }
                    P { "You post as "; Strong(me); "." }
                    page.actionForm({ request in
                        guard let text = request.form["text"], !text.isEmpty, text.utf8.count <= 2000 else { return }
                        _ = try posts.insert(Post(forum: forum, author: me, time: Int(time(nil)), text: text))  // fails: a 500, not a redirect
                        channels.notify(channel)
                    }) { Input().type(.text).name("text").required().maxlength(2000).placeholder("Message"); Button("Post").type(.submit) }
                    page.live("messages", channels: [channel]) { page in
                        if posts.lookup(records.byAuthor, page.session.userName).contains(where: { $0.record.forum == forum }) {
                            messages(posts.lookup(records.byForum, forum)) { p in
                                if p.record.author == page.session.userName {
                                    " "
                                    page.actionButton("delete") { _ in
                                        guard posts.get(p.id)?.author == me else { return }
                                        try posts.delete(p.id)
                                        channels.notify(channel)
                                    }.class("inline")
                                }
                            }
                        } else {
                            // Nothing of this reader's own: the list every such reader sees, rendered once per change.
                            cache.html(forum, version: page.version(channel)) { messages(posts.lookup(records.byForum, forum)) { _ in EmptyHTML() } }
                        }
                    }
                    page.liveStatus(transport: transport)
                }
            }.lang("en"))
        }
    }

    /// The message list; `controls` adds what a message's author may do with it.
    static func messages<Controls: FlowContent>(_ list: [(id: Int, record: Post)],
                                                   @HTMLBuilder controls: @escaping ((id: Int, record: Post)) -> Controls) -> some FlowContent {
        Ol {
            ForEach(list) { p in
                Li { Span(p.record.author).class("author"); " "; Time(utc(p.record.time)); " "; p.record.text; controls(p) }.id("m\(p.id)")
            }
        }
    }

    /// "2026-11-27 06:05 UTC".
    static func utc(_ t: Int) -> String {
        var tm = tm()
        var tt = time_t(t)
        gmtime_r(&tt, &tm)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(tm.tm_year + 1900)-\(two(tm.tm_mon + 1))-\(two(tm.tm_mday)) \(two(tm.tm_hour)):\(two(tm.tm_min)) UTC"
    }
}
