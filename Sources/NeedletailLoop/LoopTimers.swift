import Glibc

/// A loop's millisecond timers: a binary heap by deadline, for task sleeps and the deadlines of
/// suspended requests (connection timeouts, at a second's resolution, are the `TimerWheel`'s).
/// Loop-confined. A cancelled timer stays in the heap until its deadline comes (then skipped).
struct LoopTimers {
    /// A timer's handle, for `cancel`.
    struct ID: Hashable { let raw: Int }

    private struct Entry {
        let deadline: UInt64
        let id: Int
    }

    private var heap: [Entry] = []
    private var actions: [Int: () -> Void] = [:]
    private var nextID = 0

    var isEmpty: Bool { actions.isEmpty }
    var count: Int { actions.count }

    /// Nanoseconds on the monotonic clock.
    static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// Runs `action` once `nanoseconds` have passed (on the loop's thread).
    mutating func add(after nanoseconds: UInt64, _ action: @escaping () -> Void) -> ID {
        let id = nextID
        nextID += 1
        actions[id] = action
        heap.append(Entry(deadline: Self.now() &+ nanoseconds, id: id))
        var i = heap.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard heap[parent].deadline > heap[i].deadline else { break }
            heap.swapAt(parent, i)
            i = parent
        }
        return ID(raw: id)
    }

    /// Forgets a timer that has not fired; false when it already fired or was cancelled.
    @discardableResult
    mutating func cancel(_ id: ID) -> Bool { actions.removeValue(forKey: id.raw) != nil }

    /// Milliseconds until the next live timer (rounded up), or nil when there is none.
    mutating func millisecondsToNext() -> Int? {
        while let top = heap.first, actions[top.id] == nil { popTop() }
        guard let top = heap.first else { return nil }
        let now = Self.now()
        return top.deadline <= now ? 0 : Int((top.deadline - now + 999_999) / 1_000_000)
    }

    /// The actions of the timers due now, removed (the caller runs them: running them here
    /// would let an action add a timer during a mutating access).
    mutating func takeDue() -> [() -> Void] {
        var due: [() -> Void] = []
        let now = Self.now()
        while let top = heap.first, top.deadline <= now {
            popTop()
            if let action = actions.removeValue(forKey: top.id) { due.append(action) }
        }
        return due
    }

    private mutating func popTop() {
        let last = heap.removeLast()
        guard !heap.isEmpty else { return }
        heap[0] = last
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < heap.count && heap[l].deadline < heap[m].deadline { m = l }
            if r < heap.count && heap[r].deadline < heap[m].deadline { m = r }
            if m == i { break }
            heap.swapAt(i, m)
            i = m
        }
    }
}

/// A timer of `EventLoop.schedule`.
public struct LoopTimerID: Hashable, Sendable {
    let id: LoopTimers.ID
}

extension LoopTimers.ID: Sendable {}
