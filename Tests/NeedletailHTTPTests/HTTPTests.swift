import NeedletailBytes
import NeedletailHTTP
import Testing

@Suite struct QueryAndHeaderTests {
    @Test func queryDecoding() {
        let q = QueryParameters("name=%3CTLUG%3E&x=a+b&empty=&flag&name=second&caf%C3%A9=1&bad=%zz")
        #expect(q["name"] == "<TLUG>")
        #expect(q.values("name") == ["<TLUG>", "second"])
        #expect(q["x"] == "a b")
        #expect(q["empty"] == "")
        #expect(q["flag"] == "")
        #expect(q["missing"] == nil)
        #expect(q["café"] == "1")
        #expect(q["bad"] == nil, "an invalid escape is not a value")
    }

    @Test func percentDecoding() {
        #expect(PercentDecoding.decode("/a%20b+c", plusIsSpace: false) == "/a b+c")
        #expect(PercentDecoding.decode("a%2", plusIsSpace: true) == nil)
        #expect(PercentDecoding.decode("%ff", plusIsSpace: true) == nil, "not UTF-8")
    }

    @Test func headerLookupIsCaseInsensitiveAndKeepsRepeats() {
        let h = HeaderFields([("Host", "a"), ("Accept", "x"), ("accept", "y"), ("X-Empty", "")])
        #expect(h["host"] == "a")
        #expect(h["ACCEPT"] == "x")
        #expect(h.values("Accept") == ["x", "y"])
        #expect(h.combined("accept") == "x, y")
        #expect(h["x-empty"] == "")
        #expect(h["nope"] == nil)
        #expect(h.count == 4)
        #expect(Array(h).map(\.name) == ["Host", "Accept", "accept", "X-Empty"])
    }

    /// Lookups on the lines as received: a name matches only whole and before its colon, values
    /// are trimmed, and names longer than a line or holding a colon find nothing.
    @Test func headerLookupOnReceivedLines() {
        let text = "Cookie2: x=1\r\nCOOKIE:\t a=1; b=2 \t\r\nX:\r\nX-Long: v\r\ncookie: c=3\r\nHost: h:80\r\n"
        let h = HeaderFields(lines: Array(text.utf8), range: 0..<text.utf8.count)
        #expect(h["cookie"] == "a=1; b=2")
        #expect(h.values("Cookie") == ["a=1; b=2", "c=3"])
        #expect(h["cookie2"] == "x=1")
        #expect(h["cook"] == nil)
        #expect(h["x"] == "")
        #expect(h["x-long"] == "v")
        #expect(h["host"] == "h:80")
        #expect(h["host: h"] == nil)
        #expect(h["Cookie2: x=1\r\nCOOKIE"] == nil)
        #expect(h["x-long: v\r\ncookie: c=3\r\nHost: h:80\r\nmore"] == nil)
        #expect(h[""] == nil)
        let r = Request(method: .get, path: "/", headers: h)
        #expect(r.cookie("b") == "2")
        #expect(r.cookie("c") == "3", "every Cookie field is searched")
    }

    @Test func cookiesAreMatchedByWholeName() {
        let r = Request(
            method: .get, path: "/", headers: HeaderFields([("Cookie", "ab=1;  a=x=y;;b=; nt_session=0123456789abcdef;last")]))
        #expect(r.cookie("a") == "x=y", "not the pair whose name only starts with it; the value runs to its semicolon")
        #expect(r.cookie("ab") == "1")
        #expect(r.cookie("b") == "", "an empty value is there")
        #expect(r.cookie("nt_session") == "0123456789abcdef")
        #expect(r.cookie("last") == nil, "a pair without = has no value")
        #expect(r.cookie("x") == nil)
        #expect(r.cookie("") == nil)
        #expect(Request(method: .get, path: "/", headers: HeaderFields([("Cookie", "")])).cookie("a") == nil)
    }

    @Test func formBody() {
        var r = Request(method: .post, path: "/f", headers: HeaderFields([("Content-Type", "application/x-www-form-urlencoded")]))
        r.body = Array("text=hi+there&n=3".utf8)
        #expect(r.form["text"] == "hi there")
        r.headers = HeaderFields([("Content-Type", "text/plain")])
        #expect(r.form["text"] == nil)
    }
}

@Suite struct PercentEncodingTests {
    @Test func unreservedKeptTheRestEscapedAndDecodedBack() {
        #expect(PercentEncoding.encoded("Debian", keeping: PercentEncoding.isUnreserved) == "Debian")
        #expect(PercentEncoding.encoded("a&b c/é~_.-", keeping: PercentEncoding.isUnreserved) == "a%26b%20c%2F%C3%A9~_.-")
        for b in 0...255 {
            let kept = PercentEncoding.isUnreserved(UInt8(b))
            let letterOrDigit = (65...90).contains(b) || (97...122).contains(b) || (48...57).contains(b)
            #expect(kept == (letterOrDigit || [45, 46, 95, 126].contains(b)), "byte \(b)")
        }
        let text = "Gentoo & <Debian> %41 ü"
        let encoded = PercentEncoding.encoded(text, keeping: PercentEncoding.isUnreserved)
        #expect(PercentDecoding.decode(encoded, plusIsSpace: true) == text)
    }
}

@Suite struct RouterTests {
    func router() -> Router {
        var r = Router()
        r.get("/a") { _ in .text("get a") }
        r.post("/a") { req in .text("post a \(req.body.count)") }
        return r
    }

    @Test func routesByPathAndMethod() {
        let r = router()
        #expect(r.respond(to: Request(method: .get, path: "/a")).body.string == "get a")
        #expect(r.respond(to: Request(method: .head, path: "/a")).body.string == "get a")
        #expect(r.respond(to: Request(method: .post, path: "/a", body: [1, 2])).body.string == "post a 2")
        let e = r.respond(to: Request(method: .put, path: "/a"))
        #expect(e.status.code == 405)
        #expect(e.headers.first { $0.name == "Allow" }?.value == "GET, HEAD, POST")
        let nf = r.respond(to: Request(method: .get, path: "/b<script>"))
        #expect(nf.status.code == 404)
        #expect(!nf.body.string.contains("<script>"))
    }

    @Test func statusReasons() {
        #expect(HTTPStatus(code: 431).reason == "Request Header Fields Too Large")
        #expect(HTTPStatus(code: 299).reason == "Status 299")
        #expect(HTTPStatus(code: 304).forbidsBody)
        #expect(!HTTPStatus(code: 200).forbidsBody)
    }
}
