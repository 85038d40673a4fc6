import NeedletailHTTP
import Glibc
import NeedletailBytes
import NeedletailPOSIX
import Synchronization

/// Named version counters with waiting subscribers: the live half of the framework.
///
/// A page records the versions of the channels its live regions show when it is built, so
/// nothing is lost between render and subscribe (teepeedee2's rule). A subscriber says which
/// versions it has; if any is old it is answered at once, otherwise it waits (parked: no
/// thread, only this record and the connection) until `notify` bumps one of them, or until
/// its deadline. `notify` may be called from any thread; the subscribers are answered on the
/// notifying thread, their bytes handed to their own loops. A subscriber is handed the versions
/// of its channels as they were when it was taken out (read under the same lock as the notify
/// that woke it: nothing to look up again before rendering).
///
/// With several backends (`ordered`), the versions come from one counter per channel kept in
/// a database and only go up: each backend's `Channels` mirrors them (`advance`), and a viewer
/// whose page was rendered where the mirror was further along waits for this one to catch up
/// instead of being told its versions are old.
public final class Channels: Sendable {
    struct Subscriber {
        let known: ChannelVersions
        let deadline: UInt64
        let target: any ChannelSubscriber
    }

    struct State {
        var versions: [Channel: UInt64] = [:]
        var subscribers: [Int: Subscriber] = [:]
        var byChannel: [Channel: Set<Int>] = [:]
        var nextID = 0
        let ordered: Bool
        /// Set by `endAll`: subscribers are ended as they come, not parked.
        var ending = false

        /// The channels of `known` at their current versions (ordered: never below the ones
        /// `known` has, which come from the same counters).
        func current(_ known: ChannelVersions) -> ChannelVersions {
            ordered ? known.updated(to: versions) : known.updated { versions[$0] ?? 0 }
        }
    }

    let state: Mutex<State>
    let clock: @Sendable () -> UInt64
    let sweeper: Atomic<Bool> = Atomic(false)

    /// `ordered`: the versions are global and only go up (set them with `advance`, as
    /// NeedletailCluster's `SharedChannels` does); else this process counts them (`notify`).
    public init(clock: @escaping @Sendable () -> UInt64 = secondsSinceBoot, ordered: Bool = false) {
        self.clock = clock
        state = Mutex(State(ordered: ordered))
    }

    /// Whether the versions are global (see `init`).
    public var isOrdered: Bool { state.withLock { $0.ordered } }

    /// The current version of `channel` (0 until its first notify).
    public func version(_ channel: Channel) -> UInt64 {
        state.withLock { $0.versions[channel] ?? 0 }
    }

    /// The channels of `known` at their current versions (one lock for all).
    public func current(_ known: ChannelVersions) -> ChannelVersions {
        state.withLock { $0.current(known) }
    }

    /// `channels` at their current versions (one lock for all).
    public func versions(_ channels: [Channel]) -> ChannelVersions {
        state.withLock { s in ChannelVersions(channels.map { ChannelVersion($0, s.versions[$0] ?? 0) }) }
    }

    /// The channels among `known` whose version differs from the one given.
    public func changed(_ known: ChannelVersions) -> [Channel] {
        state.withLock { s in known.filter { (s.versions[$0.channel] ?? 0) != $0.version }.map(\.channel) }
    }

    /// Bumps `channel` and answers every subscriber waiting on it. Not for ordered channels:
    /// their versions are counted in the database, in the writing transaction (a bump here
    /// would run ahead of the other backends; it is refused and logged).
    public func notify(_ channel: Channel) {
        let due: [(Subscriber, ChannelVersions)]? = state.withLock { s in
            if s.ordered { return nil }
            s.versions[channel, default: 0] += 1
            let version = s.versions[channel] ?? 0
            // Every subscriber of the channel leaves it at once; only those that also wait on
            // other channels are taken out of those sets one by one (a crowd on one channel
            // costs no hashing of the channel's name per subscriber).
            guard let ids = s.byChannel.removeValue(forKey: channel) else { return [] }
            // (The notified channel's version is at hand: no lookup of it per subscriber.)
            return ids.compactMap { id in
                remove(id: id, from: &s, except: channel).map { sub in
                    (sub, sub.known.updated { $0 == channel ? version : s.versions[$0] ?? 0 })
                }
            }
        }
        guard let due else {
            reportToStandardError(
                "needletail: notify(\(channel)) on channels whose versions are global: notify in the writing transaction (SharedChannels)")
            return
        }
        for (d, versions) in due { d.target.deliver(versions) }
    }

    /// Moves `channel` up to `version` (a version counted elsewhere: the database of several
    /// backends) and answers the subscribers that had an older one. Nothing when this mirror
    /// is already there: a version heard twice (its own commit, then the notification) or out
    /// of order never goes back.
    public func advance(_ channel: Channel, to version: UInt64) {
        let due: [(Subscriber, ChannelVersions)] = state.withLock { s in
            guard version > s.versions[channel] ?? 0 else { return [] }
            s.versions[channel] = version
            guard let ids = s.byChannel[channel] else { return [] }
            var woken: [(Subscriber, ChannelVersions)] = []
            for id in ids {
                guard let sub = s.subscribers[id], (sub.known.version(of: channel) ?? 0) < version,
                    let taken = remove(id: id, from: &s)
                else { continue }
                woken.append((taken, s.current(taken.known)))
            }
            return woken
        }
        for (d, versions) in due { d.target.deliver(versions) }
    }

    /// Number of parked subscribers.
    public var waiting: Int { state.withLock { $0.subscribers.count } }

    /// Parks a subscriber that has `known` versions, unless one is already old: then `deliver`
    /// runs at once. `deliver` runs exactly once: on a change, at the deadline (`timeout`
    /// seconds), or never if `isCancelled` turns true first (the client left). It is given the
    /// current versions of the channels of `known`, in the same order.
    public func wait(
        for known: ChannelVersions, timeout: UInt64,
        isCancelled: @escaping @Sendable () -> Bool, deliver: @escaping @Sendable (ChannelVersions) -> Void
    ) {
        wait(for: known, timeout: timeout, subscriber: ClosureSubscriber(isCancelled: isCancelled, deliver: deliver))
    }

    /// The same with the subscriber as one object (what a parked poll is: one allocation
    /// instead of two closures).
    public func wait(for known: ChannelVersions, timeout: UInt64, subscriber: any ChannelSubscriber) {
        startSweeper()
        let now: (ChannelVersions, Bool)? = state.withLock { s in
            let current = s.current(known)
            if s.ending { return (current, true) }
            if known.differs(from: current) { return (current, false) }
            let id = s.nextID
            s.nextID += 1
            s.subscribers[id] = Subscriber(known: known, deadline: clock() + timeout, target: subscriber)
            for entry in known { s.byChannel[entry.channel, default: []].insert(id) }
            return nil
        }
        if let (current, ending) = now {
            if ending { subscriber.end(current) } else { subscriber.deliver(current) }
        }
    }

    /// Ends every parked subscriber (`ChannelSubscriber.end`), and those that come from now on
    /// until `resume`: this process is handing over to a new build (docs/UPGRADE.md).
    public func endAll() {
        let all: [(Subscriber, ChannelVersions)] = state.withLock { s in
            s.ending = true
            let taken = s.subscribers.values.map { ($0, s.current($0.known)) }
            s.subscribers.removeAll()
            s.byChannel.removeAll()
            return taken
        }
        for (sub, current) in all where !sub.target.isCancelled { sub.target.end(current) }
    }

    /// Parks subscribers again after `endAll` (the new build failed; this process serves on).
    public func resume() {
        state.withLock { $0.ending = false }
    }

    /// Takes subscriber `id` out of the state, and out of the sets of the channels it waits on
    /// (but `channel`, whose set the caller has already removed).
    func remove(id: Int, from s: inout State, except channel: Channel? = nil) -> Subscriber? {
        guard let sub = s.subscribers.removeValue(forKey: id) else { return nil }
        for c in sub.known.map(\.channel) where c != channel {
            s.byChannel[c]?.remove(id)
            if s.byChannel[c]?.isEmpty == true { s.byChannel[c] = nil }
        }
        return sub
    }

    /// Once a second: answer subscribers past their deadline, drop those whose client left.
    func sweep() {
        let now = clock()
        let due: [(Subscriber, ChannelVersions)] = state.withLock { s in
            let ids = s.subscribers.filter { $0.value.deadline <= now || $0.value.target.isCancelled }.map(\.key)
            return ids.compactMap { id in remove(id: id, from: &s).map { sub in (sub, s.current(sub.known)) } }
        }
        for (d, versions) in due where !d.target.isCancelled { d.target.deliver(versions) }
    }

    func startSweeper() {
        guard sweeper.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        do {
            // The channels live as long as the process (the thread holds them).
            try POSIXThread.spawn(name: "channel sweeper", detached: true) { [self] in
                while true {
                    sleep(1)
                    sweep()
                }
            }
        } catch {
            // Tried again by the next wait; until then parked polls wait for a change only.
            sweeper.store(false, ordering: .relaxed)
            reportToStandardError("needletail: cannot start the channel sweeper, polls will not time out: \(error)")
        }
    }
}
