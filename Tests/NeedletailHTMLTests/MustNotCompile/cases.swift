// Each case below must fail to type-check, with an error on one of its lines that contains
// the text after "expect:". CompileTimeCheckTests compiles this file (excluded from the test
// target) with swiftc against the built NeedletailHTML module, and compiles Control.swift,
// which holds the legal counterparts, expecting no error at all.
import NeedletailHTML

// case: misspelled element
// expect: cannot find 'Dvi' in scope
func c1() -> some HTMLContent { Dvi { "x" } }

// case: misspelled attribute
// expect: has no member 'clas'
func c2() -> some HTMLContent { Div { "x" }.clas("note") }

// case: attribute the element does not have
// expect: has no member 'href'
func c3() -> some HTMLContent { Div { "x" }.href("/") }

// case: li outside ul/ol/menu
// expect: conform to 'FlowContent'
func c4() -> some HTMLContent { Div { Li("x") } }

// case: li directly in body
// expect: conform to 'FlowContent'
func c5() -> some HTMLContent { Body { Li("x") } }

// case: div inside p
// expect: conform to 'PhrasingContent'
func c6() -> some HTMLContent { P { Div { "x" } } }

// case: p inside p
// expect: conform to 'PhrasingContent'
func c7() -> some HTMLContent { P { "a"; P("b") } }

// case: ul inside p
// expect: conform to 'PhrasingContent'
func c8() -> some HTMLContent { P { Ul { Li("x") } } }

// case: table inside p
// expect: conform to 'PhrasingContent'
func c9() -> some HTMLContent { P { Table { Tbody { Tr { Td("x") } } } } }

// case: form inside p
// expect: conform to 'PhrasingContent'
func c10() -> some HTMLContent { P { Form { "x" } } }

// case: h1 inside p
// expect: conform to 'PhrasingContent'
func c11() -> some HTMLContent { P { H1("x") } }

// case: div inside a heading
// expect: conform to 'PhrasingContent'
func c12() -> some HTMLContent { H2 { Div("x") } }

// case: p inside span
// expect: conform to 'PhrasingContent'
func c13() -> some HTMLContent { Span { P("x") } }

// case: h3 inside span, nested deeper
// expect: conform to 'PhrasingContent'
func c14() -> some HTMLContent { Div { Span { Em { H3("x") } } } }

// case: div inside a phrasing-only context (button)
// expect: conform to 'PhrasingContent'
func c15() -> some HTMLContent { Button { Div("x") } }

// case: a containing flow content inside p (a is transparent)
// expect: conform to 'PhrasingContent'
func c16() -> some HTMLContent { P { A { Div("x") } } }

// case: a inside a
// expect: conform to 'NonInteractive'
func c17() -> some HTMLContent { A { "x"; A("y") } }

// case: a inside a, at depth
// expect: conform to 'NonInteractive'
func c18() -> some HTMLContent { A { Span { Strong { A("y") } } } }

// case: button inside a
// expect: conform to 'NonInteractive'
func c19() -> some HTMLContent { A { Button("b") } }

// case: form inside form
// expect: conform to 'FormFree'
func c20() -> some HTMLContent { Form { Form { "x" } } }

// case: form inside form, at depth
// expect: conform to 'FormFree'
func c21() -> some HTMLContent { Form { Div { Section { Form { "x" } } } } }

// case: tr directly in table
// expect: conform to 'TableContent'
func c22() -> some HTMLContent { Table { Tr { Td("x") } } }

// case: tr outside a table
// expect: conform to 'FlowContent'
func c23() -> some HTMLContent { Div { Tr { Td("x") } } }

// case: td outside tr
// expect: conform to 'TableRowContent'
func c24() -> some HTMLContent { Table { Tbody { Td("x") } } }

// case: option outside select
// expect: conform to 'FlowContent'
func c25() -> some HTMLContent { Div { Option("x") } }

// case: option in a list
// expect: conform to 'ListItemContent'
func c26() -> some HTMLContent { Ul { Option("x") } }

// case: optgroup inside optgroup
// expect: conform to 'OptionContent'
func c27() -> some HTMLContent { Select { Optgroup { Optgroup { Option("x") } } } }

// case: misspelled CSS property in a style attribute
// expect: has no member 'dispaly'
func c28() -> some HTMLContent { Div { "x" }.style(.dispaly(.flex)) }

// case: misspelled CSS property in a rule
// expect: has no member 'colour'
func c29() -> CSSRule { CSSRule(.class("x"), .colour(.red)) }

// case: unknown CSS keyword
// expect: has no member 'flexbox'
func c30() -> CSSDeclaration { .display(.flexbox) }

// case: selector with an unknown element
// expect: has no member 'dvi'
func c31() -> CSSSelector { .tag(.dvi) }

// case: script from a plain string (only NeedletailJS or JSON may go in)
// expect: conform to 'ScriptBody'
func c32() -> some HTMLContent { Script("alert(1)") }

// case: metadata in body
// expect: conform to 'FlowContent'
func c33() -> some HTMLContent { Body { Title("x") } }

// case: content in a void element
// expect: extra trailing closure
func c34() -> some HTMLContent { Br { "x" } }

// case: unknown value of an enumerated attribute
// expect: has no member 'sumbit'
func c35() -> some HTMLContent { Button("go").type(.sumbit) }

// case: a length where a colour is wanted
// expect: cannot convert value
func c36() -> CSSDeclaration { .color(CSSLength.px(3)) }

// case: a flow component whose body is not flow content
// expect: conform to protocol 'FlowContent'
struct C37: FlowComponent { var body: some HTMLContent { Li("x") } }

// case: a form-free component that holds a form
// expect: conform to 'FormFree'
struct C38: FlowComponent, FormFreeComponent { var body: some FlowContent & FormFree { Form { Input().name("x") } } }

// case: a flow component inside a paragraph
// expect: conform to 'PhrasingContent'
struct C39: FlowComponent { var body: some FlowContent { Div { "x" } } }
func c39() -> some HTMLContent { P { C39() } }
