import NeedletailHTML
import Testing

@Suite struct CSSTests {
    @Test func styleAttributeFromTypedDeclarations() {
        let d = Div("x").style(.display(.flex), .gap(.px(4)), .color(.hex(0x0a0b0c)), .fontWeight(.w700), .margin(0, .auto))
        #expect(d.renderedString() == "<div style=\"display:flex;gap:4px;color:#0a0b0c;font-weight:700;margin:0 auto\">x</div>")
    }

    @Test func stylesheetWithSelectorsAndMedia() {
        let sheet = Stylesheet {
            CSSRule(.tag(.body), .fontFamily(.systemUI, "Helvetica Neue", .sansSerif), .margin(0))
            CSSRule(.tag(.ul).child(.tag(.li)).and(.class("new")), .backgroundColor(.rgba(255, 255, 0, 0.5)))
            CSSRule(.tag(.a).hover, .textDecorationLine(.underline))
            CSSMedia(.maxWidth(.px(600))) {
                CSSRule(.id("board"), .padding(.rem(0.5)))
            }
        }
        #expect(
            sheet.css == """
                body{font-family:system-ui,"Helvetica Neue",sans-serif;margin:0}
                ul>li.new{background-color:rgb(255 255 0 / 0.5)}
                a:hover{text-decoration-line:underline}
                @media (max-width:600px){#board{padding:0.5rem}}
                """)
        #expect(Style(sheet).renderedString().hasPrefix("<style>body{"))
    }

    @Test func stringsAndCustomValuesCannotEscape() {
        // A font name or custom value trying to end the declaration, the rule or the element.
        let evil = "x\";}</style><script>alert(1)</script>"
        let sheet = Stylesheet {
            CSSRule(
                .class("a"), .fontFamily(CSSFontFamily(stringLiteral: evil)), .custom(name: "--v", value: evil), .content(.string(evil)))
        }
        #expect(!sheet.css.contains("<"))
        #expect(!sheet.css.contains("}</"))
        #expect(sheet.css.hasSuffix("}"))
        #expect(sheet.css.filter { $0 == "}" }.count == 1, "\(sheet.css)")
        #expect(CSSDeclaration.custom(name: "bad name;", value: "1").property == "--invalid-name")
        #expect(CSSSelector.class("a b{").css == ".a\\20 b\\7b ")
        #expect(CSSValue.url("javascript:alert(1)").css == "url(\"about:invalid#needletail-refused-url\")")
        #expect(CSSValue.url("/img/a b.png?x=1").css == "url(\"/img/a b.png?x=1\")")
    }

    @Test func everyKeywordEnumRendersItsCSSName() {
        #expect(CSSDisplay.inlineBlock.rawValue == "inline-block")
        #expect(CSSPosition.static.rawValue == "static")
        #expect(CSSDeclaration.whiteSpace(.preWrap).text == "white-space:pre-wrap")
        #expect(CSSDeclaration.display(.inherit).text == "display:inherit")
        #expect(CSSDeclaration.transitionDuration(.ms(150), .s(1)).text == "transition-duration:150ms,1s")
    }
}
