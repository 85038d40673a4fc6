// A 200-line page in Needletail's HTML DSL: the compile-time benchmark (Benchmarks/typecheck-page
// type-checks it and reports the slowest expressions). Written the way an application would,
// in one expression per page, without splitting anything to help the type checker.
import NeedletailHTML

struct Post {
    var id: Int
    var author: String
    var time: String
    var text: String
    var replies: [String]
}

struct Forum {
    var name: String
    var description: String
    var posts: Int
}

enum Site {
    static let sheet = Stylesheet {
        CSSRule(.tag(.body), .fontFamily(.systemUI, .sansSerif), .margin(0), .color(.hex(0x222222)))
        CSSRule(.tag(.header), .display(.flex), .alignItems(.center), .gap(.rem(1)), .padding(.rem(1)))
        CSSRule(.tag(.nav).descendant(.tag(.a)), .textDecorationLine(.none), .color(.hex(0x0645ad)))
        CSSRule(.tag(.nav).descendant(.tag(.a)).and(.class("current")), .fontWeight(.bold))
        CSSRule(.class("message"), .padding(.rem(0.5)), .borderBottomStyle(.solid), .borderBottomWidth(.px(1)))
        CSSRule(.class("author"), .fontWeight(.w600))
        CSSRule(.tag(.time), .color(.gray), .fontSize(.em(0.9)))
        CSSRule(.id("status"), .position(.fixed), .bottom(.rem(1)), .right(.rem(1)), .opacity(0.8))
        CSSMedia(.maxWidth(.px(600))) {
            CSSRule(.tag(.header), .flexDirection(.column))
            CSSRule(.tag(.table), .fontSize(.em(0.8)))
        }
    }

    static func page(user: String, forums: [Forum], current: Forum, posts: [Post], version: Int, loggedIn: Bool, notice: String?) -> some HTMLContent {
        Html {
            Head {
                Meta().charset("utf-8")
                Meta().name("viewport").content("width=device-width, initial-scale=1")
                Title("Needletail board: " + current.name)
                Link().rel("stylesheet").href("/static/board.css")
                Link().rel("icon").href("/static/favicon.png")
                Style(sheet)
                Script().src("/static/needletail.js").defer()
            }
            Body {
                Header {
                    A { Img().src("/static/logo.png").alt("Needletail").width(32).height(32) }.href("/")
                    H1("Message board")
                    Nav {
                        Ul {
                            ForEach(forums) { f in
                                Li {
                                    A(f.name).href("/board/" + f.name).class("current", if: f.name == current.name)
                                    " "
                                    Small { "("; f.posts; ")" }
                                }
                            }
                        }
                    }.aria("label", "Forums")
                    if loggedIn {
                        P { "Signed in as "; Strong(user) }.class("user")
                    } else {
                        P { A("Sign in").href("/login") }.class("user")
                    }
                }
                if let notice {
                    Div(notice).class("notice").role("status")
                }
                Main {
                    Section {
                        H2 { "Forum "; current.name }
                        P(current.description).class("description")
                        Form {
                            Fieldset {
                                Legend("New message")
                                Label { "Text "; Textarea("").name("text").rows(3).cols(60).required().maxlength(2000) }
                                Label { "Notify me "; Input().type(.checkbox).name("notify").value("1") }
                                Select {
                                    Option("Normal").value("normal").selected()
                                    Option("Important").value("important")
                                    Optgroup {
                                        Option("Announcement").value("announcement")
                                        Option("Question").value("question")
                                    }.label("Kinds")
                                }.name("kind")
                                Button("Post").type(.submit)
                            }
                        }.method(.post).action("/board/" + current.name + "/post").class("post-form")
                    }
                    Section {
                        H2("Messages")
                        Ol {
                            ForEach(posts) { post in
                                Li {
                                    Article {
                                        Header {
                                            Span(post.author).class("author")
                                            " "
                                            Time(post.time).datetime(post.time)
                                        }
                                        P(post.text)
                                        if !post.replies.isEmpty {
                                            Details {
                                                Summary { post.replies.count; " replies" }
                                                Ul {
                                                    ForEach(post.replies) { r in Li(r) }
                                                }
                                            }
                                        }
                                        Footer {
                                            Form {
                                                Input().type(.hidden).name("id").value(String(post.id))
                                                Button("Delete").type(.submit).class("link")
                                            }.method(.post).action("/board/delete")
                                            A("Permalink").href("/board/" + current.name + "#m" + String(post.id))
                                        }
                                    }
                                }.id("m" + String(post.id)).class("message")
                            }
                        }.id("messages").data("channel", "forum:" + current.name).data("version", String(version))
                    }
                    Section {
                        H2("Statistics")
                        Table {
                            Caption("Posts per forum")
                            Thead {
                                Tr { Th("Forum").scope(.col); Th("Posts").scope(.col); Th("Share").scope(.col) }
                            }
                            Tbody {
                                ForEach(forums) { f in
                                    Tr {
                                        Th(f.name).scope(.row)
                                        Td { f.posts }
                                        Td { Meter().value(Double(f.posts)).min(0).max(100) }
                                    }
                                }
                            }
                            Tfoot {
                                Tr { Td("Total").colspan(2); Td { forums.reduce(0) { $0 + $1.posts } } }
                            }
                        }
                    }
                    Section {
                        H2("Members")
                        Ul {
                            ForEach(posts.map(\.author)) { name in
                                Li {
                                    Span(name).class("member").style(.fontStyle(.italic), .marginRight(.px(4)))
                                    if name == user {
                                        Em("(you)")
                                    } else {
                                        A("message").href("/members/" + name)
                                    }
                                }
                            }
                        }.class("members")
                        Form {
                            Label { "Search "; Input().type(.search).name("q").placeholder("name").autocomplete("off") }
                            Label { "Since "; Input().type(.date).name("since") }
                            Label { "Limit "; Input().type(.number).name("limit").min("1").max("100").step("1") }
                            Button("Find").type(.submit)
                        }.method(.get).action("/members")
                    }
                    Section {
                        H2("Help")
                        Dl {
                            Dt("Posting")
                            Dd { "Write your message and press "; Kbd("Post"); "." }
                            Dt("Deleting")
                            Dd { "Only your own messages can be deleted." }
                            Dt("Live updates")
                            Dd { "New messages appear without reloading "; Em("while this page is open"); "." }
                        }
                        Blockquote {
                            P("Serving dynamic webpages in less than a millisecond.")
                        }.cite("https://john.fremlin.de/")
                        Figure {
                            Img().src("/static/chart.svg").alt("Requests per second by server").loading(.lazy)
                            Figcaption("Requests per second, one core.")
                        }
                        Pre { Code("curl -s http://127.0.0.1:8080/hello?name=you") }
                        P {
                            "Versions: "
                            Abbr("HTML").title("HyperText Markup Language")
                            ", "
                            Abbr("CSS").title("Cascading Style Sheets")
                            Br()
                            Sub("1"); Sup("2"); Mark("new"); Cite("the talk"); Q("quoted")
                        }
                    }
                }.id("board")
                Footer {
                    P {
                        "Needletail · "
                        A("Source").href("https://example.org/needletail").rel("noopener")
                        " · "
                        Time("2026").datetime("2026-11-27")
                    }
                    Div("").id("status").aria("live", "polite")
                    Noscript { P("Live updates need JavaScript; everything else works without it.") }
                }
            }
        }.lang("en")
    }
}
