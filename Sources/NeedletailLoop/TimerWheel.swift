/// Deadlines at one-second resolution for many connections, O(1) to set and to fire.
///
/// Each connection has at most one deadline. Pushing a deadline later (the usual case: more
/// activity on a keep-alive connection) only stores a number; the wheel notices when it reaches
/// the slot and moves the connection on. Pulling a deadline earlier moves it at once.
struct TimerWheel {
    static let slotCount = 128
    private var slots: [[Connection]] = Array(repeating: [], count: TimerWheel.slotCount)
    /// The last second whose slot has been processed.
    private(set) var lastTick: Int

    init(now: Int) { lastTick = now }

    /// Sets (or clears, with 0) `conn`'s deadline, in loop seconds.
    mutating func set(_ conn: Connection, deadline: Int) {
        conn.deadline = deadline
        guard deadline > 0 else { return }  // cleared lazily when its slot comes up
        if conn.wheelSlot >= 0 {
            if deadline >= conn.slottedFor { return }
            remove(conn)
        }
        insert(conn, at: max(deadline, lastTick + 1))
    }

    private mutating func insert(_ conn: Connection, at time: Int) {
        let s = time & (TimerWheel.slotCount - 1)
        conn.wheelSlot = s
        conn.wheelIndex = slots[s].count
        conn.slottedFor = time
        slots[s].append(conn)
    }

    /// Takes `conn` out of the wheel (it is closing).
    mutating func remove(_ conn: Connection) {
        let s = conn.wheelSlot
        guard s >= 0 else { return }
        let i = conn.wheelIndex
        let last = slots[s].count - 1
        if i != last {
            let moved = slots[s][last]
            slots[s][i] = moved
            moved.wheelIndex = i
        }
        slots[s].removeLast()
        conn.wheelSlot = -1
    }

    /// Advances to `now` and returns the connections whose deadline has passed (the caller
    /// acts on them after this returns, since acting may set deadlines again).
    mutating func advance(to now: Int) -> [Connection] {
        var expired: [Connection] = []
        guard now > lastTick else { return expired }
        // After a long stall, one pass over every slot is enough.
        let from = max(lastTick + 1, now - TimerWheel.slotCount + 1)
        lastTick = now
        for t in from...now {
            let s = t & (TimerWheel.slotCount - 1)
            if slots[s].isEmpty { continue }
            let due = slots[s]
            for c in due { c.wheelSlot = -1 }
            slots[s].removeAll(keepingCapacity: true)
            for c in due {
                if c.deadline <= 0 || c.isClosed { continue }
                if c.deadline <= now {
                    c.deadline = 0
                    expired.append(c)
                } else {
                    insert(c, at: c.deadline)
                }
            }
        }
        return expired
    }

    /// Number of connections in the wheel (tests).
    var count: Int { slots.reduce(0) { $0 + $1.count } }
}
