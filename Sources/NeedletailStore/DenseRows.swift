/// Values by record id in an array indexed by id: ids are handed out in sequence, so the array
/// is dense (a deleted record leaves a hole). Faster than a dictionary to fill and to read, and
/// iterates in id order for free.
@usableFromInline
struct DenseRows<T> {
    @usableFromInline private(set) var slots: [T?] = []
    private(set) var count = 0

    /// Ids further than this past the last slot are refused (a damaged id must not make the
    /// array explode; sequential ids never jump that far).
    static var maxGap: Int { 10_000_000 }

    func canHold(_ id: Int) -> Bool { id >= 1 && id <= slots.count + DenseRows.maxGap }

    @usableFromInline
    subscript(id: Int) -> T? {
        @inlinable get { id >= 1 && id <= slots.count ? slots[id - 1] : nil }
        set {
            precondition(canHold(id), "record id \(id) out of range")
            if id == slots.count + 1, newValue != nil {
                slots.append(newValue)  // the usual case: the next id
                count += 1
                return
            }
            if id > slots.count {
                guard newValue != nil else { return }
                slots.append(contentsOf: repeatElement(nil, count: id - slots.count))
            }
            let old = slots[id - 1]
            if old == nil && newValue != nil { count += 1 }
            if old != nil && newValue == nil { count -= 1 }
            slots[id - 1] = newValue
        }
    }

    mutating func reserveCapacity(_ n: Int) { slots.reserveCapacity(n) }

    /// (id, value) pairs in increasing id order.
    var entries: [(id: Int, value: T)] {
        var out: [(id: Int, value: T)] = []
        out.reserveCapacity(count)
        for (i, v) in slots.enumerated() { if let v { out.append((i + 1, v)) } }
        return out
    }

    /// The highest id held, or 0.
    var lastID: Int {
        var i = slots.count
        while i > 0 && slots[i - 1] == nil { i -= 1 }
        return i
    }
}
