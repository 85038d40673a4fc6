import NeedletailHTTP
import NeedletailPOSIX

/// Who waits on channels (see `Channels.wait`): answered once, with the current versions of
/// the channels it waits on, in the order given; dropped unanswered once `isCancelled`.
public protocol ChannelSubscriber: AnyObject, Sendable {
    /// True once the client has gone.
    var isCancelled: Bool { get }
    /// The answer: called once, on the thread that takes the subscriber out (a notify's, the
    /// sweeper's, or `wait`'s own when a version is already old).
    func deliver(_ current: ChannelVersions)
}

/// A subscriber made of two closures.
final class ClosureSubscriber: ChannelSubscriber {
    let cancelled: @Sendable () -> Bool
    let answer: @Sendable (ChannelVersions) -> Void
    init(isCancelled: @escaping @Sendable () -> Bool, deliver: @escaping @Sendable (ChannelVersions) -> Void) {
        cancelled = isCancelled
        answer = deliver
    }
    var isCancelled: Bool { cancelled() }
    func deliver(_ current: ChannelVersions) { answer(current) }
}
