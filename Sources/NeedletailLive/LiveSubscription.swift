import NeedletailPOSIX
import NeedletailHTTP

/// A live page's subscription to its channels (one object per parked wait): a long-poll is
/// answered once with the update (or at its deadline with the versions unchanged) and its
/// stream ends; an event stream sends each change and follows on from the new versions, or
/// sends a heartbeat comment when a wait ends with nothing new.
final class LiveSubscription: ChannelSubscriber {
    enum Kind { case poll, events }
    let kind: Kind
    let core: LiveAppCore
    let page: Page
    let known: ChannelVersions
    let stream: ResponseStream

    init(_ kind: Kind, core: LiveAppCore, page: Page, known: ChannelVersions, stream: ResponseStream) {
        self.kind = kind
        self.core = core
        self.page = page
        self.known = known
        self.stream = stream
    }

    var isCancelled: Bool { stream.isCancelled }

    func deliver(_ current: ChannelVersions) {
        switch kind {
        case .poll:
            stream.finish(with: core.answer(page, known, current))
        case .events where !known.differs(from: current):
            stream.write(": heartbeat\n\n")
            core.channels.wait(for: known, timeout: LiveAppCore.heartbeat, subscriber: self)
        case .events:
            core.send(page, known, current, to: stream)
        }
    }

    /// The process hands over: a poll gets its answer (the runtime polls again at once, and
    /// the new process, which does not know this page's view, tells it to reload); an event
    /// stream gets an `nt-reconnect` event and ends.
    func end(_ current: ChannelVersions) {
        switch kind {
        case .poll: stream.finish(with: core.answer(page, known, current))
        case .events:
            stream.write("event: nt-reconnect\ndata: \n\n")
            stream.finish()
        }
    }
}
