import CNeedletailLinux
import Glibc
import NeedletailPOSIX

/// Something on a loop's thread that waits on a descriptor that is not a client connection:
/// a database connection's socket (`NeedletailPostgres`). The loop watches the descriptor
/// level-triggered and calls `ready` on its own thread while the descriptor is ready for what
/// was asked.
public protocol LoopWatcher: AnyObject {
    /// The descriptor is readable (`readable`), writable (`writable`), or failed or hung up
    /// (`failed`: read it to learn why). Called on the loop's thread.
    func ready(readable: Bool, writable: Bool, failed: Bool)
}

/// A descriptor a loop watches for a `LoopWatcher` (`EventLoop.watch`).
public struct LoopWatch: Sendable, Equatable {
    let slot: Int
    let generation: UInt32
    /// The descriptor watched.
    public let fd: Int32
}

/// The loop's watched descriptors: slots reused through a free list, each with a generation
/// so that an event for a slot freed earlier in the same batch is recognised as stale.
struct LoopWatchers {
    private var entries: [(generation: UInt32, watcher: (any LoopWatcher)?)] = []
    private var free: [Int] = []

    mutating func add(_ watcher: any LoopWatcher) -> (slot: Int, generation: UInt32) {
        if let slot = free.popLast() {
            let generation = (entries[slot].generation &+ 1) & 0x0fff_ffff
            entries[slot] = (generation, watcher)
            return (slot, generation)
        }
        entries.append((0, watcher))
        return (entries.count - 1, 0)
    }

    mutating func remove(slot: Int, generation: UInt32) {
        guard slot < entries.count, entries[slot].generation == generation, entries[slot].watcher != nil else { return }
        entries[slot].watcher = nil
        free.append(slot)
    }

    func watcher(slot: Int, generation: UInt32) -> (any LoopWatcher)? {
        guard slot < entries.count, entries[slot].generation == generation else { return nil }
        return entries[slot].watcher
    }

    var count: Int { entries.count - free.count }
}

extension EventLoop {
    /// Starts watching `fd` for `watcher` (call on the loop's thread): readable always,
    /// writable when `writable` is set (turn it on only while output is pending: the
    /// watch is level-triggered). The loop holds the watcher until `unwatch`.
    public func watch(fd: Int32, writable: Bool = false, _ watcher: any LoopWatcher) throws(SystemCallError) -> LoopWatch {
        let (slot, generation) = watchers.add(watcher)
        do {
            try controlWatch(EPOLL_CTL_ADD, fd, writable: writable, token: .watch(slot: slot, generation: generation))
        } catch {
            watchers.remove(slot: slot, generation: generation)
            throw error
        }
        return LoopWatch(slot: slot, generation: generation, fd: fd)
    }

    /// Changes whether `watch` also waits for its descriptor to be writable.
    public func rewatch(_ watch: LoopWatch, writable: Bool) throws(SystemCallError) {
        try controlWatch(EPOLL_CTL_MOD, watch.fd, writable: writable, token: .watch(slot: watch.slot, generation: watch.generation))
    }

    /// Stops watching (before the descriptor is closed). Events already fetched for it are
    /// dropped.
    public func unwatch(_ watch: LoopWatch) {
        watchers.remove(slot: watch.slot, generation: watch.generation)
        var ev = epoll_event()
        _ = epoll_ctl(epollFD, EPOLL_CTL_DEL, watch.fd, &ev)
    }

    /// How many descriptors the loop watches for watchers.
    public var watchCount: Int { watchers.count }

    private func controlWatch(_ op: Int32, _ fd: Int32, writable: Bool, token: EPollToken) throws(SystemCallError) {
        var ev = epoll_event()
        ev.events = nt_epollin() | nt_epollrdhup() | (writable ? nt_epollout() : 0)
        ev.data.u64 = token.raw
        let epfd = epollFD
        _ = try SystemCall.retrying("epoll_ctl \(op == EPOLL_CTL_ADD ? "add" : "modify") watched fd \(fd)") {
            epoll_ctl(epfd, op, fd, &ev)
        }
    }

    func dispatchWatch(_ events: UInt32, slot: Int, generation: UInt32) {
        guard let watcher = watchers.watcher(slot: slot, generation: generation) else { return }
        watcher.ready(
            readable: events & (nt_epollin() | nt_epollrdhup()) != 0,
            writable: events & nt_epollout() != 0,
            failed: events & (nt_epollerr() | nt_epollhup()) != 0)
    }
}

/// Work put off until the loop has run everything that is ready, just before it waits for
/// events again: a database connection sends the queries of every task that ran in this turn
/// with one write instead of one each.
public protocol LoopDeferred: AnyObject {
    /// Called once per `EventLoop.runBeforeWaiting(_:)`, on the loop's thread.
    func runBeforeWaiting()
}

extension EventLoop {
    /// Calls `deferred.runBeforeWaiting()` once, on this loop's thread, after the jobs and
    /// events at hand and before the loop waits (call on the loop's thread).
    public func runBeforeWaiting(_ deferred: any LoopDeferred) {
        beforeWaiting.append(deferred)
    }

    func runBeforeWaiting() {
        let due = beforeWaiting
        beforeWaiting.removeAll(keepingCapacity: true)
        for d in due { d.runBeforeWaiting() }
    }
}

/// State other targets keep per loop (a database client's connections on that loop): made on
/// first use on the loop's thread, touched only there.
extension EventLoop {
    /// The object kept on this loop for `key`, made by `make` the first time (call on the
    /// loop's thread).
    public func local<T: AnyObject>(for key: AnyObject, make: () -> T) -> T {
        let id = ObjectIdentifier(key)
        if let found = locals[id] { return found as! T }  // one type per key: the caller's own
        let made = make()
        locals[id] = made
        return made
    }

    /// Drops the object kept for `key` on this loop and returns it (call on the loop's thread).
    @discardableResult
    public func removeLocal(for key: AnyObject) -> AnyObject? {
        locals.removeValue(forKey: ObjectIdentifier(key))
    }
}
