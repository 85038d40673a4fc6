import NeedletailHTTP

/// What an action's handler gets: the request that ran it (its form fields), the visitor's
/// session, and the app's channels to notify.
///
/// ```swift
/// page.actionForm({ action in
///     guard let text = action.form["text"] else { return }
///     try posts.insert(Post(text: text))
///     action.notify(.board)
/// }) { … }
/// ```
/// An action's handler that may wait (see `Page.actionForm`): it runs on the loop that received
/// the POST and resumes there after each await.
public typealias AsyncAction = @Sendable (ActionContext) async throws -> Void

/// A live page's builder that awaits its data before it renders (see `LiveApp.page`).
public typealias AsyncPage = @Sendable (Page) async throws -> Response

public struct ActionContext: Sendable {
    /// The POST that ran the action.
    public let request: Request
    /// The visitor whose page holds the form.
    public let session: Session
    /// The app's channels.
    public let channels: Channels

    /// The form's fields: `action.form["text"]`.
    public var form: QueryParameters { request.form }

    /// Bumps `channel`: every open page showing it gets its live regions again.
    public func notify(_ channel: Channel) { channels.notify(channel) }
}
