// The legal counterparts of cases.swift: must type-check without any error, so that a failure
// there is known to come from the rule and not from a broken set-up.
import NeedletailHTML

@HTMLBuilder func ok1() -> some HTMLContent { Div { "x" }.class("note").id("n") }
@HTMLBuilder func ok2() -> some HTMLContent { A("x").href("/") }
@HTMLBuilder func ok3() -> some HTMLContent { Ul { Li("x") }; Ol { Li("y") }; Menu { Li("z") } }
@HTMLBuilder func ok4() -> some HTMLContent { P { Span("a"); Em("b"); A("c").href("/"); Br(); Code("d") } }
@HTMLBuilder func ok5() -> some HTMLContent { Div { P("a"); Ul { Li("x") }; Table { Tbody { Tr { Td("x") } } }; Form { "x" }; H1("x") } }
@HTMLBuilder func ok6() -> some HTMLContent { H2 { Span("x") }; Button { Span("x") } }
@HTMLBuilder func ok7() -> some HTMLContent { Div { A { Div("x") } } }
@HTMLBuilder func ok8() -> some HTMLContent { A { Span { Strong("y") } } }
@HTMLBuilder func ok9() -> some HTMLContent { Form { Div { Section { Input().name("x"); Button("go").type(.submit) } } } }
@HTMLBuilder func ok10() -> some HTMLContent { Table { Thead { Tr { Th("x") } }; Tbody { Tr { Td("x") } } } }
@HTMLBuilder func ok11() -> some HTMLContent { Select { Option("x"); Optgroup { Option("y") } }; Datalist { Option("z") } }
@HTMLBuilder func ok12() -> some HTMLContent { Div { "x" }.style(.display(.flex), .color(.hex(0x333333))) }
func ok13() -> CSSRule { CSSRule(.class("x").descendant(.tag(.div)), .color(.red), .margin(0, .px(4))) }
@HTMLBuilder func ok14() -> some HTMLContent { Html { Head { Title("x"); Meta().charset("utf-8") }; Body { P("x") } } }
@HTMLBuilder func ok15() -> some HTMLContent { Label { "Name "; Input().name("n") } }
struct OK16: FlowComponent, FormFreeComponent { var body: some FlowContent & FormFree { Div { P("x") } } }
struct OK17: PhrasingComponent, FormFreeComponent { let name: String; var body: some PhrasingContent & FormFree { "Hello "; Strong(name) } }
@HTMLBuilder func ok16() -> some HTMLContent { Form { OK16(); P { OK17(name: "x") } } }
