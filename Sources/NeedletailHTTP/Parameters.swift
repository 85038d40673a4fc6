/// A value a page parameter can have: parsed from the text of a query field, a form field or
/// a cookie.
public protocol ParameterValue {
    init?(parameterText: String)
    /// How the expected type is described in a 400 page ("an integer").
    static var parameterDescription: String { get }
}

extension String: ParameterValue {
    public init?(parameterText: String) { self = parameterText }
    public static var parameterDescription: String { "text" }
}

extension Int: ParameterValue {
    public init?(parameterText: String) { self.init(parameterText) }
    public static var parameterDescription: String { "an integer" }
}

extension Double: ParameterValue {
    public init?(parameterText: String) {
        guard let v = Double(parameterText), v.isFinite else { return nil }
        self = v
    }
    public static var parameterDescription: String { "a number" }
}

extension Bool: ParameterValue {
    public init?(parameterText: String) {
        switch parameterText.lowercased() {
        case "1", "true", "yes", "on": self = true
        case "0", "false", "no", "off", "": self = false
        default: return nil
        }
    }
    public static var parameterDescription: String { "true or false" }
}

extension ParameterValue where Self: RawRepresentable, RawValue == String, Self: CaseIterable {
    public init?(parameterText: String) { self.init(rawValue: parameterText) }
    public static var parameterDescription: String { "one of " + allCases.map(\.rawValue).joined(separator: ", ") }
}

/// A parameter of the wrong type: answered with a 400 page that names it.
public struct ParameterError: Error, Sendable, CustomStringConvertible {
    public let name: String
    public let expected: String
    public let got: String
    @inlinable public init(name: String, expected: String, got: String) {
        self.name = name
        self.expected = expected
        self.got = got
    }
    public var description: String { "The parameter \(name) must be \(expected) (it was \"\(got)\")." }
}

extension Request {
    /// The parameter `name` as a `T`: from the form body, else the query, else a cookie; the
    /// default when it is absent; a `ParameterError` when it cannot be read as a `T`.
    @inlinable
    public func parameter<T: ParameterValue>(_ name: String, default value: T) throws(ParameterError) -> T {
        guard let text = form[name] ?? query[name] ?? cookie(name) else { return value }
        guard let v = T(parameterText: text) else {
            throw ParameterError(name: name, expected: T.parameterDescription, got: String(text.prefix(100)))
        }
        return v
    }

    /// The query parameter `name` as a `T` (a page's URL options, which neither a form body
    /// nor a cookie should set): the default when it is absent; a `ParameterError` when it
    /// cannot be read as a `T`.
    @inlinable
    public func queryParameter<T: ParameterValue>(_ name: String, default value: T) throws(ParameterError) -> T {
        guard let text = query[name] else { return value }
        guard let v = T(parameterText: text) else {
            throw ParameterError(name: name, expected: T.parameterDescription, got: String(text.prefix(100)))
        }
        return v
    }
}
