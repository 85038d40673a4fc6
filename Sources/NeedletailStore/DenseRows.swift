/// Values by record id. Ids are handed out in sequence, so they live in an array indexed by id
/// (a deleted record leaves a hole): faster than a dictionary to fill and to read, and in id
/// order for free. An id far past the end of the array (more than `maxGap`: transactions that
/// reserved ids and failed, or a damaged or hostile log) goes into a small dictionary instead,
/// so that no id can make the array grow by more than `maxGap` slots per record.
@usableFromInline
struct DenseRows<T> {
    @usableFromInline private(set) var slots: [T?] = []
    /// Ids beyond the array's reach, until the array grows up to them.
    @usableFromInline private(set) var outliers: [Int: T] = [:]
    private(set) var count = 0

    /// Holes the array may take to reach a new id; farther ids are outliers.
    static var maxGap: Int { 64 }

    /// Ids are positive (and not absurd: `Int.max` has no successor).
    func canHold(_ id: Int) -> Bool { id >= 1 && id < Int.max / 2 }

    @usableFromInline
    subscript(id: Int) -> T? {
        @inlinable get {
            if id >= 1 && id <= slots.count { return slots[id - 1] }
            return outliers.isEmpty ? nil : outliers[id]
        }
        set {
            precondition(canHold(id), "record id \(id) out of range")
            if id == slots.count + 1, newValue != nil, outliers.isEmpty {
                slots.append(newValue)  // the usual case: the next id
                count += 1
                return
            }
            if id > slots.count + DenseRows.maxGap {
                let old = outliers[id]
                outliers[id] = newValue
                if old == nil && newValue != nil { count += 1 }
                if old != nil && newValue == nil { count -= 1 }
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
            if !outliers.isEmpty { absorbOutliers() }
        }
    }

    /// Moves outliers the array has now reached into it, lowest first (each one absorbed may
    /// bring the next within reach), so that every outlier stays past the array's end.
    private mutating func absorbOutliers() {
        for (id, value) in outliers.sorted(by: { $0.key < $1.key }) {
            guard id <= slots.count + DenseRows.maxGap else { return }
            outliers[id] = nil
            if id > slots.count { slots.append(contentsOf: repeatElement(nil, count: id - slots.count)) }
            slots[id - 1] = value
        }
    }

    mutating func reserveCapacity(_ n: Int) { slots.reserveCapacity(n) }

    /// Calls `body` with each (id, value), in increasing id order.
    func forEach<E: Error>(_ body: (Int, T) throws(E) -> Void) throws(E) {
        for (i, v) in slots.enumerated() { if let v { try body(i + 1, v) } }
        for (id, v) in outliers.sorted(by: { $0.key < $1.key }) { try body(id, v) }
    }

    /// (id, value) pairs in increasing id order.
    var entries: [(id: Int, value: T)] {
        var out: [(id: Int, value: T)] = []
        out.reserveCapacity(count)
        forEach { out.append(($0, $1)) }
        return out
    }

    /// The highest id held, or 0.
    var lastID: Int {
        if let top = outliers.keys.max() { return top }
        var i = slots.count
        while i > 0 && slots[i - 1] == nil { i -= 1 }
        return i
    }
}
