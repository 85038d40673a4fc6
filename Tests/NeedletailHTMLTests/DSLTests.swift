import NeedletailBytes
import NeedletailHTML
import Testing

struct Message {
    var author: String
    var text: String
}

@Suite struct DSLTests {
    @Test func rendersElementsAttributesAndText() {
        let page = Div {
            H1("Hello <TLUG>")
            P {
                "a & b "
                A("link").href("/x?a=1&b=2").class("nav").class("big")
                Br()
                Span { 42 }
            }
            Label("Name").for("name")
            Input().type(.text).name("name").required().value("\"quoted\" 'single' <x>")
        }.id("main")
        #expect(
            page.renderedString() == """
                <div id="main"><h1>Hello &lt;TLUG&gt;</h1><p>a &amp; b <a href="/x?a=1&amp;b=2" class="nav big">link</a><br><span>42</span></p>\
                <label for="name">Name</label><input type="text" name="name" required value="&quot;quoted&quot; &#39;single&#39; &lt;x&gt;"></div>
                """)
    }

    @Test func controlFlowAndForEach() {
        let messages = [Message(author: "ann", text: "<b>hi</b>"), Message(author: "bob", text: "yo")]
        let loggedIn = true
        let list = Ul {
            ForEach(messages) { m in
                Li {
                    Strong(m.author); " "; m.text
                }
            }
            if loggedIn {
                Li("logout")
            } else {
                Li { A("login").href("/login") }
            }
            for i in 1...2 { Li { i } }
        }
        #expect(
            list.renderedString()
                == "<ul><li><strong>ann</strong> &lt;b&gt;hi&lt;/b&gt;</li><li><strong>bob</strong> yo</li><li>logout</li><li>1</li><li>2</li></ul>"
        )
    }

    @Test func documentHasDoctypeAndHead() {
        let doc = Html {
            Head {
                Meta().charset("utf-8")
                Title("T & T")
                Link().rel("stylesheet").href("/s.css")
            }
            Body { P("x") }
        }.lang("en")
        #expect(
            doc.renderedString()
                == "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>T &amp; T</title><link rel=\"stylesheet\" href=\"/s.css\"></head><body><p>x</p></body></html>"
        )
    }

    @Test func urlAttributesRefuseScriptSchemes() {
        let bad = [
            "javascript:alert(1)", "  JaVaScRiPt:alert(1)", "java\tscript:x", "\u{1}javascript:x", "vbscript:x", "data:text/html,<script>",
            "DATA:image/svg+xml,<svg>", "JAVASCRIPT:x", "VbScRiPt:x", "jav\nascript:x", "javascript", "\r\n\tdata:text/html,x",
        ]
        for url in bad {
            #expect(A("x").href(url).renderedString() == "<a href=\"about:invalid#needletail-refused-url\">x</a>", "\(url)")
        }
        let good = [
            "/path", "https://example.com/a", "mailto:a@b", "data:image/png;base64,AAAA", "?q=javascript:", "#javascript:x", "page.html",
            "javascripx:y", "vbscripts:x", "vbscrip:x", "datax:y", "dat:y", "javascriptjs:x", "xjavascript:x", "averyverylongscheme:x",
        ]
        for url in good {
            #expect(A("x").href(url).renderedString().contains("refused") == false, "\(url)")
        }
        #expect(A("x").href(trusted: "javascript:void(0)").renderedString() == "<a href=\"javascript:void(0)\">x</a>")
        #expect(
            Img().src("data:image/gif;base64,R0lGOD").alt("a\"b").renderedString()
                == "<img src=\"data:image/gif;base64,R0lGOD\" alt=\"a&quot;b\">")
    }

    @Test func commentsCannotBeClosedEarly() {
        #expect(Comment("a -- b --> c").renderedString() == "<!--a - - b - -> c-->")
        #expect(Comment(">x").renderedString() == "<!-- >x-->")
        #expect(Comment("->x").renderedString() == "<!--- >x-->")
        #expect(Comment("x-").renderedString() == "<!--x- -->")
        #expect(!Comment("<!-- --!> -->").renderedString().dropFirst(4).dropLast(3).contains("--"))
    }

    @Test func rawHTMLIsTheOnlyWayAround() {
        #expect(
            Div {
                RawHTML("<b>trusted</b>"); "<b>not</b>"
            }.renderedString() == "<div><b>trusted</b>&lt;b&gt;not&lt;/b&gt;</div>")
    }

    @Test func tablesAndSelects() {
        let t = Table {
            Thead {
                Tr {
                    Th("id"); Th("message")
                }
            }
            Tbody {
                ForEach([(1, "a<b")], ) { row in
                    Tr {
                        Td { row.0 }; Td(row.1)
                    }
                }
            }
        }
        #expect(
            t.renderedString()
                == "<table><thead><tr><th>id</th><th>message</th></tr></thead><tbody><tr><td>1</td><td>a&lt;b</td></tr></tbody></table>")
        let s = Select {
            Option("Ubuntu").value("1").selected()
            Optgroup { Option("Debian").value("2") }.label("more")
        }.name("forum")
        #expect(
            s.renderedString()
                == "<select name=\"forum\"><option value=\"1\" selected>Ubuntu</option><optgroup label=\"more\"><option value=\"2\">Debian</option></optgroup></select>"
        )
    }

    @Test func duplicateIDsAreReportedInDebugBuilds() {
        var out = HTMLOutput()
        Div {
            Span("a").id("x"); Span("b").id("x"); Span("c").id("y")
        }.render(into: &out)
        #if DEBUG
            #expect(out.duplicateIDs == ["x"])
        #else
            #expect(out.duplicateIDs.isEmpty)
        #endif
    }

    @Test func staticHTMLIsRenderedOnceAndReferenced() {
        let header = StaticHTML {
            Header {
                H1("Needletail"); P(String(repeating: "static text ", count: 60))
            }
        }
        var out = HTMLOutput()
        Body {
            header; P("dynamic")
        }.render(into: &out)
        #expect(out.chunks.string.hasPrefix("<body><header><h1>Needletail</h1><p>static text "))
        var referenced = 0
        out.chunks.forEachPart { part in
            if case .immortal = part { referenced += 1 }
        } owned: { _ in
        }
        #expect(referenced == 1, "a large static block goes out by reference, not copied")
    }

    @Test func sharedHTMLIsRenderedOnceAndReferencedByEveryPage() {
        let list = SharedHTML(Ol { ForEach(0..<40) { i in Li("message <\(i)>") } })
        #expect(list.markup.hasPrefix("<ol><li>message &lt;0&gt;</li>"))
        func page(_ who: String) -> Chunks {
            var out = HTMLOutput()
            Body {
                P(who); list; P("end")
            }.render(into: &out)
            return out.chunks
        }
        let a = page("a"), b = page("b <")
        #expect(a.string == "<body><p>a</p>" + list.markup + "<p>end</p></body>")
        #expect(b.string == "<body><p>b &lt;</p>" + list.markup + "<p>end</p></body>")
        #expect(a.count == a.bytes.count)
        for chunks in [a, b] {
            var shared: [SharedBytes] = []
            chunks.withLinks { _, part in if case .shared(let s) = part { shared.append(s) } }
            #expect(shared.count == 1 && shared[0] === list.bytes, "the same bytes, by reference, in both pages")
        }
        // Appending a chain keeps the reference; a short shared fragment is copied.
        var c = Chunks()
        c.append(a)
        var kept = 0
        c.withLinks { _, part in if case .shared = part { kept += 1 } }
        #expect(kept == 1 && c.string == a.string)
        var short = Chunks()
        short.append(shared: SharedHTML(P("hi")).bytes)
        #expect(short.isSingleOwnedRun && short.string == "<p>hi</p>")
    }

    @Test func dataAndAriaAttributes() {
        #expect(Div().data("version", "3").aria("live", "polite").renderedString() == "<div data-version=\"3\" aria-live=\"polite\"></div>")
        #expect(Div().data("Bad Name", "x").renderedString() == "<div></div>")
    }
}
