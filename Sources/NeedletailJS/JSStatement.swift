import NeedletailHTML

/// A JavaScript statement (or a few lines of one, such as an `if` with its blocks).
public struct JSStatement: Sendable {
    /// Lines without indentation of their own level; nested blocks are already indented.
    let lines: [String]

    init(_ lines: [String]) { self.lines = lines }

    /// The statement's code.
    public var code: String { lines.joined(separator: "\n") }
    init(_ line: String) { lines = [line] }

    static func block(_ body: [JSStatement], indent: Int) -> String {
        if body.isEmpty { return "{}" }
        var out = "{\n"
        for s in body {
            for l in s.lines { out += "  " + l + "\n" }
        }
        return out + "}"
    }

    static func blockLines(_ head: String, _ body: [JSStatement]) -> [String] {
        var out = [head + " {"]
        for s in body { out += s.lines.map { "  " + $0 } }
        out.append("}")
        return out
    }
}

/// Builds statements from a closure: expressions become expression statements.
@resultBuilder
public enum JSBuilder {
    public static func buildExpression(_ e: JSExpr) -> [JSStatement] { [JSStatement(e.code + ";")] }
    public static func buildExpression(_ s: JSStatement) -> [JSStatement] { [s] }
    public static func buildExpression(_ s: [JSStatement]) -> [JSStatement] { s }
    public static func buildBlock(_ parts: [JSStatement]...) -> [JSStatement] { parts.flatMap { $0 } }
    public static func buildOptional(_ s: [JSStatement]?) -> [JSStatement] { s ?? [] }
    public static func buildEither(first: [JSStatement]) -> [JSStatement] { first }
    public static func buildEither(second: [JSStatement]) -> [JSStatement] { second }
    public static func buildArray(_ s: [[JSStatement]]) -> [JSStatement] { s.flatMap { $0 } }
}

/// `let name = value;`, and the variable as an expression: `let n = Let("n", 0)` then `n + 1`.
public func Let(_ name: String, _ value: JSExpr? = nil) -> JSStatement {
    JSStatement("let " + JSIdentifier.checkedBinding(name) + (value.map { " = " + $0.code } ?? "") + ";")
}

/// `const name = value;`.
public func Const(_ name: String, _ value: JSExpr) -> JSStatement {
    JSStatement("const " + JSIdentifier.checkedBinding(name) + " = " + value.code + ";")
}

/// `target = value;` (target is a variable, property or index).
public func Assign(_ target: JSExpr, _ value: JSExpr) -> JSStatement {
    JSStatement(target.code + " = " + value.code + ";")
}

/// `target += value;`.
public func AddAssign(_ target: JSExpr, _ value: JSExpr) -> JSStatement {
    JSStatement(target.code + " += " + value.code + ";")
}

/// `return value;`.
public func Return(_ value: JSExpr? = nil) -> JSStatement {
    JSStatement("return" + (value.map { " " + $0.code } ?? "") + ";")
}

/// `break;`.
public let Break = JSStatement("break;")
/// `continue;`.
public let Continue = JSStatement("continue;")

/// `throw value;`.
public func Throw(_ value: JSExpr) -> JSStatement { JSStatement("throw " + value.code + ";") }

/// `// text` (line breaks removed).
public func LineComment(_ text: String) -> JSStatement {
    JSStatement("// " + text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }).joined(separator: " "))
}

/// `function name(a, b) { ... }`.
public func Function(_ name: String, _ parameters: String..., @JSBuilder body: () -> [JSStatement]) -> JSStatement {
    let params = parameters.map(JSIdentifier.checkedBinding).joined(separator: ", ")
    return JSStatement(JSStatement.blockLines("function " + JSIdentifier.checkedBinding(name) + "(" + params + ")", body()))
}

/// `if (condition) { ... }`, with `else if` and `else` chained on: `If(c) {...}.else {...}`.
public struct If {
    var lines: [String]

    public init(_ condition: JSExpr, @JSBuilder then body: () -> [JSStatement]) {
        lines = JSStatement.blockLines("if (" + condition.code + ")", body())
    }

    /// `else if (condition) { ... }`.
    public func elseIf(_ condition: JSExpr, @JSBuilder then body: () -> [JSStatement]) -> If {
        var copy = self
        let more = JSStatement.blockLines("if (" + condition.code + ")", body())
        copy.lines[copy.lines.count - 1] = "} else " + more[0]
        copy.lines += more.dropFirst()
        return copy
    }

    /// `else { ... }`.
    public func `else`(@JSBuilder _ body: () -> [JSStatement]) -> JSStatement {
        var l = lines
        let more = JSStatement.blockLines("", body())
        l[l.count - 1] = "} else {"
        l += more.dropFirst()
        return JSStatement(l)
    }

    var statement: JSStatement { JSStatement(lines) }
}

extension JSBuilder {
    public static func buildExpression(_ i: If) -> [JSStatement] { [i.statement] }
}

/// `for (const item of sequence) { ... }`.
public func ForOf(_ item: String, in sequence: JSExpr, @JSBuilder body: () -> [JSStatement]) -> JSStatement {
    JSStatement(JSStatement.blockLines("for (const " + JSIdentifier.checkedBinding(item) + " of " + sequence.code + ")", body()))
}

/// `for (let i = from; i < to; i++) { ... }`.
public func For(_ counter: String, from: JSExpr, to: JSExpr, @JSBuilder body: () -> [JSStatement]) -> JSStatement {
    let i = JSIdentifier.checkedBinding(counter)
    return JSStatement(JSStatement.blockLines("for (let \(i) = \(from.code); \(i) < \(to.code); \(i)++)", body()))
}

/// `while (condition) { ... }`.
public func While(_ condition: JSExpr, @JSBuilder body: () -> [JSStatement]) -> JSStatement {
    JSStatement(JSStatement.blockLines("while (" + condition.code + ")", body()))
}

/// `try { ... } catch (e) { ... }`: `Try("e") { ... } catch: { ... }`.
public func Try(_ error: String, @JSBuilder _ body: () -> [JSStatement], @JSBuilder catch handler: () -> [JSStatement]) -> JSStatement {
    var l = JSStatement.blockLines("try", body())
    let h = JSStatement.blockLines("", handler())
    l[l.count - 1] = "} catch (" + JSIdentifier.checkedBinding(error) + ") {"
    l += h.dropFirst()
    return JSStatement(l)
}

/// A whole script: statements, rendered as readable JS. Goes into `Script(...)` (it is a
/// `ScriptBody`) or is served as a file.
public struct JSProgram: ScriptBody, Sendable {
    public let statements: [JSStatement]
    public init(@JSBuilder _ body: () -> [JSStatement]) { statements = body() }

    /// The program's text.
    public var code: String {
        var out = ""
        for s in statements { for l in s.lines { out += l + "\n" } }
        return out
    }

    public var scriptText: String { code }
}

extension JSProgram {
    /// The whole program wrapped in a function called at once, so its names stay private.
    public var wrapped: String {
        var out = "(() => {\n\"use strict\";\n"
        for s in statements { for l in s.lines { out += "  " + l + "\n" } }
        return out + "})();\n"
    }
}
