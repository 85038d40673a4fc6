import Foundation
import NeedletailHTML
import NeedletailJS
import NeedletailTestSupport
import Testing

/// Runs `code` with node and returns what it printed.
func runNode(_ code: String) throws -> (status: Int32, output: String) { try run("/usr/bin/env", ["node", "-e", code]) }

@Suite struct JSTests {
    let console = JS.console
    let x = JSExpr.name("x")
    let i = JSExpr.name("i")

    @Test func expressionsReadLikeJS() {
        #expect((x + 1 * 2).code == "x + 1 * 2")
        #expect(((x + 1) * 2).code == "(x + 1) * 2")
        #expect((x - (i - 1)).code == "x - (i - 1)")
        #expect((x === "a" && !(i < 3)).code == "x === \"a\" && !(i < 3)")
        #expect(JS.document.getElementById("status").textContent.code == "document.getElementById(\"status\").textContent")
        #expect(x["k"].length.code == "x[\"k\"].length")
        #expect(JSExpr.object(["a": 1, "b-c": "d"]).code == "{a: 1, \"b-c\": \"d\"}")
        #expect(JSExpr.new(JS.EventSource, "/live").code == "new EventSource(\"/live\")")
        #expect((x > 0).ternary("pos", "neg").code == "x > 0 ? \"pos\" : \"neg\"")
    }

    @Test func literalsFromSwiftValuesAreSafeInScript() {
        let hostile = "</script><script>alert(1)</script><!-- \u{2028}'\"\\"
        let lit = JSExpr(hostile)
        #expect(!lit.code.lowercased().contains("</script"))
        #expect(!lit.code.contains("<!--"))
        #expect(!lit.code.contains("<"))
        let program = JSProgram { console.log(lit) }
        let page = Script(program).renderedString()
        #expect(page.hasPrefix("<script>console.log(\""))
        #expect(page.lowercased().components(separatedBy: "</script").count == 2, "only the real end tag")
        // and node reads the same string back
        let r = try? runNode(program.code)
        #expect(r?.status == 0)
        #expect(r?.output == hostile + "\n")
    }

    @Test func jsonValuesRoundTripThroughNode() throws {
        let value: JSONValue = ["name": "<TLUG> & co", "n": 3, "ratio": 0.5, "ok": true, "none": nil, "list": [1, "two", ["x": 1]]]
        let r = try runNode("const v = \(JSExpr(value).code); console.log(JSON.stringify(v));")
        #expect(r.status == 0, "\(r.output)")
        #expect(r.output == "{\"name\":\"<TLUG> & co\",\"n\":3,\"ratio\":0.5,\"ok\":true,\"none\":null,\"list\":[1,\"two\",{\"x\":1}]}\n")
        #expect(Script(value).renderedString().contains("\\u003cTLUG\\u003e \\u0026 co"))
    }

    @Test func statementsProduceReadableJS() {
        let p = JSProgram {
            Function("sum", "n") {
                Let("total", 0)
                For("i", from: 0, to: .name("n")) {
                    If(i % 2 === 0) {
                        AddAssign(.name("total"), i)
                    }.else {
                        Continue
                    }
                }
                Return(.name("total"))
            }
            console.log(JSExpr.name("sum")(10))
        }
        #expect(
            p.code == """
                function sum(n) {
                  let total = 0;
                  for (let i = 0; i < n; i++) {
                    if (i % 2 === 0) {
                      total += i;
                    } else {
                      continue;
                    }
                  }
                  return total;
                }
                console.log(sum(10));

                """)
    }

    @Test func programsRunInNodeAndDoWhatTheySay() throws {
        let items = JSExpr.name("items")
        let out = JSExpr.name("out")
        let p = JSProgram {
            Const("items", [3, 1, 2])
            Let("out", [])
            ForOf("v", in: items) {
                If(JSExpr.name("v") > 1) {
                    out.push(JSExpr.name("v") * 10)
                }.elseIf(JSExpr.name("v") === 1) {
                    out.push("one")
                }
            }
            Const("f", .function("a", "b") { Return(.name("a") + .name("b")) })
            Try("e") {
                Throw(JSExpr.new(JS.Error, "boom"))
            } catch: {
                out.push(JSExpr.name("e").message)
            }
            While(out.length < 5) { out.push(JSExpr.name("f")(1, 2)) }
            console.log(JS.JSON.stringify(out))
        }
        let r = try runNode(p.wrapped)
        #expect(r.status == 0, "\(r.output)\n\(p.wrapped)")
        #expect(r.output == "[30,\"one\",20,\"boom\",3]\n")
    }

    @Test func badIdentifiersNeverBecomeCode() {
        #expect(JSExpr.name("alert(1)").code == "undefined")
        #expect(JSExpr.name("x").__proto__.code == "x.__proto__")
        #expect(Let("let", 1).code == "let _invalid_ = 1;")
    }

    @Test func eventAttributesAreEscaped() {
        let b = Button("go").on(.click) { JS.console.log("a\"b<c>") }
        #expect(b.renderedString() == "<button onclick=\"console.log(&quot;a\\&quot;b\\u003cc\\u003e&quot;);\">go</button>")
    }
}
