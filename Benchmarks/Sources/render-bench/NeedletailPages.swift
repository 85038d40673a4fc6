import Needletail

// The two pages written with Needletail's HTML DSL, as an application would write them.

enum NeedletailPages {
    /// The part of the board page that never changes: rendered once, referenced after.
    static let boardHead = StaticHTML {
        Head {
            Meta().charset("utf-8")
            Meta().name("viewport").content("width=device-width, initial-scale=1")
            Title("Needletail message board")
            Link().rel("stylesheet").href("/static/board.css")
            Script().src("/static/needletail.js").defer()
        }
    }

    static func board(forum: String, messages: [BoardMessage], version: Int) -> some HTMLContent {
        Html {
            boardHead
            Body {
                Header {
                    H1("Message board")
                    Nav {
                        Ul {
                            ForEach(BenchData.forums) { f in
                                Li { A(f).href("/board/" + f).class("current", if: f == forum) }
                            }
                        }
                    }
                }
                Main {
                    H2 {
                        "Forum "; forum
                    }
                    Form {
                        Input().type(.text).name("text").required().placeholder("Your message")
                        Button("Post").type(.submit)
                    }.method(.post).action("/board/" + forum + "/post")
                    Ol {
                        ForEach(messages) { m in
                            Li {
                                Span(m.author).class("author")
                                " "
                                Time(m.time).datetime(m.time)
                                P(m.text)
                            }.id("m\(m.id)").class("message")
                        }
                    }.id("messages").data("channel", "forum:" + forum).data("version", String(version))
                }
            }
        }.lang("en")
    }

    static func fortunes(_ fortunes: [Fortune]) -> some HTMLContent {
        Html {
            Head { Title("Fortunes") }
            Body {
                Table {
                    Tbody {
                        Tr {
                            Th("id"); Th("message")
                        }
                        ForEach(fortunes) { f in
                            Tr {
                                Td { f.id }; Td(f.message)
                            }
                        }
                    }
                }
            }
        }
    }
}
