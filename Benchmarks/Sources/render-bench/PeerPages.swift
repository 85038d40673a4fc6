import Mustache
import Plot

// The same two pages in Plot 0.14 and swift-mustache 2.1, written as their documentation shows.

enum PlotPages {
    static func board(forum: String, messages: [BoardMessage], version: Int) -> String {
        let html = HTML(
            .lang(.english),
            .head(
                .meta(.charset(.utf8)),
                .meta(.name("viewport"), .content("width=device-width, initial-scale=1")),
                .title("Needletail message board"),
                .stylesheet("/static/board.css"),
                .script(.src("/static/needletail.js"))
            ),
            .body(
                .header(
                    .h1("Message board"),
                    .nav(
                        .ul(
                            .forEach(BenchData.forums) { f in
                                .li(.a(.href("/board/" + f), .class(f == forum ? "current" : ""), .text(f)))
                            }))
                ),
                .main(
                    .h2(.text("Forum " + forum)),
                    .form(
                        .method(.post), .action("/board/" + forum + "/post"),
                        .input(.type(.text), .name("text"), .required(true), .placeholder("Your message")),
                        .button(.type(.submit), .text("Post"))),
                    .ol(
                        .id("messages"), .data(named: "channel", value: "forum:" + forum), .data(named: "version", value: String(version)),
                        .forEach(messages) { m in
                            .li(
                                .id("m\(m.id)"), .class("message"),
                                .span(.class("author"), .text(m.author)),
                                .text(" "),
                                .time(.datetime(m.time), .text(m.time)),
                                .p(.text(m.text)))
                        })
                )
            )
        )
        return html.render()
    }

    static func fortunes(_ fortunes: [Fortune]) -> String {
        HTML(
            .head(.title("Fortunes")),
            .body(
                .table(
                    .tr(.th("id"), .th("message")),
                    .forEach(fortunes) { f in .tr(.td(.text(String(f.id))), .td(.text(f.message))) }
                ))
        ).render()
    }
}

/// Rendering context for swift-mustache: dictionaries (its fast path, no Mirror).
enum MustachePages {
    static let boardTemplate = try! MustacheTemplate(
        string: """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">\
            <title>Needletail message board</title><link rel="stylesheet" href="/static/board.css">\
            <script src="/static/needletail.js" defer></script></head>\
            <body><header><h1>Message board</h1><nav><ul>{{#forums}}<li><a href="/board/{{name}}"{{#current}} class="current"{{/current}}>{{name}}</a></li>{{/forums}}</ul></nav></header>\
            <main><h2>Forum {{forum}}</h2><form method="post" action="/board/{{forum}}/post"><input type="text" name="text" required placeholder="Your message"><button type="submit">Post</button></form>\
            <ol id="messages" data-channel="forum:{{forum}}" data-version="{{version}}">\
            {{#messages}}<li id="m{{id}}" class="message"><span class="author">{{author}}</span> <time datetime="{{time}}">{{time}}</time><p>{{text}}</p></li>{{/messages}}\
            </ol></main></body></html>
            """)

    static let fortunesTemplate = try! MustacheTemplate(
        string: """
            <!DOCTYPE html>
            <html><head><title>Fortunes</title></head><body><table><tr><th>id</th><th>message</th></tr>\
            {{#fortunes}}<tr><td>{{id}}</td><td>{{message}}</td></tr>{{/fortunes}}</table></body></html>
            """)

    static func board(forum: String, messages: [BoardMessage], version: Int) -> String {
        let context: [String: Any] = [
            "forum": forum,
            "version": version,
            "forums": BenchData.forums.map { ["name": $0, "current": $0 == forum] as [String: Any] },
            "messages": messages.map { ["id": $0.id, "author": $0.author, "time": $0.time, "text": $0.text] as [String: Any] },
        ]
        return boardTemplate.render(context)
    }

    static func fortunes(_ fortunes: [Fortune]) -> String {
        let context: [String: Any] = ["fortunes": fortunes.map { ["id": $0.id, "message": $0.message] as [String: Any] }]
        return fortunesTemplate.render(context)
    }
}
