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
    /// The process stops serving this subscriber (it hands over to a new build): answer so
    /// that the client comes back at once, to whichever process serves then. Called once,
    /// instead of `deliver`. Default: `deliver`.
    func end(_ current: ChannelVersions)
}

extension ChannelSubscriber {
    public func end(_ current: ChannelVersions) { deliver(current) }
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
