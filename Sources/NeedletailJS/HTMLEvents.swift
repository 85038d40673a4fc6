import NeedletailHTML

/// DOM events that an element can handle inline (`.on(.click) { ... }`). Prefer listeners
/// installed from a script file: pages with a Content-Security-Policy of `script-src 'self'`
/// ignore inline handlers.
public enum DOMEvent: Sendable {
    case click, submit, input, change, load, keydown, keyup, focus, blur

    var attribute: StaticString {
        switch self {
        case .click: "onclick"
        case .submit: "onsubmit"
        case .input: "oninput"
        case .change: "onchange"
        case .load: "onload"
        case .keydown: "onkeydown"
        case .keyup: "onkeyup"
        case .focus: "onfocus"
        case .blur: "onblur"
        }
    }
}

extension HTMLElement {
    /// An inline event handler from generated JS (attribute-escaped like any value).
    public consuming func on(_ event: DOMEvent, @JSBuilder _ body: () -> [JSStatement]) -> Self {
        let code = body().flatMap(\.lines).joined(separator: " ")
        return attribute(event.attribute, text: code)
    }
}

extension Script {
    /// A `<script>` holding a program wrapped in a function (its names stay private).
    public init(wrapping program: JSProgram) {
        self.init(WrappedProgram(text: program.wrapped))
    }
}

struct WrappedProgram: ScriptBody {
    let text: String
    var scriptText: String { text }
}
