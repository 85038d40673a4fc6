/// A piece of a page written as a type of its own, as Elementary writes them: its markup is
/// its `body`, built with the same checked DSL.
///
/// ```swift
/// struct Greeting: PhrasingComponent {
///     let name: String
///     var body: some PhrasingContent { "Hello "; Strong(name) }
/// }
/// ```
/// Where a component may stand is said by the protocol it adopts, and checked against its
/// body: a `FlowComponent`'s body must be flow content, a `PhrasingComponent`'s phrasing
/// content; `FormFreeComponent` and `NonInteractiveComponent` add that its body has no form
/// (it can go inside a form) or no interactive element (it can go inside a link or a button).
public protocol HTMLComponent: HTMLContent {
    associatedtype Body: HTMLContent
    /// The component's markup.
    @HTMLBuilder var body: Body { get }
}

extension HTMLComponent {
    @inlinable
    public func render(into out: inout HTMLOutput) { body.render(into: &out) }
}

/// A component that is flow content (goes where a `div` may).
public protocol FlowComponent: HTMLComponent, FlowContent where Body: FlowContent {}

/// A component that is phrasing content (goes where a `span` may).
public protocol PhrasingComponent: FlowComponent, PhrasingContent where Body: PhrasingContent {}

/// A component whose body holds no `form` at any depth (it may go inside a form).
public protocol FormFreeComponent: HTMLComponent, FormFree where Body: FormFree {}

/// A component whose body holds no interactive element at any depth (it may go inside `a`
/// or `button`).
public protocol NonInteractiveComponent: HTMLComponent, NonInteractive where Body: NonInteractive {}

/// A component that is metadata (goes in `head`).
public protocol MetadataComponent: HTMLComponent, MetadataContent where Body: MetadataContent {}
