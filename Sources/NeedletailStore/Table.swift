/// An index over one field of a record type: `Index(\Message.forum)`.
public struct Index<R: Record>: Sendable {
    let keyPath: PartialKeyPath<R> & Sendable
    let key: @Sendable (R) -> AnyHashable

    public init<K: Hashable & Sendable>(_ keyPath: KeyPath<R, K> & Sendable) {
        self.keyPath = keyPath
        key = { AnyHashable($0[keyPath: keyPath]) }
    }
}

/// What the store needs from a table whatever its record type.
protocol AnyTable: AnyObject {
    func snapshotOperations() -> [Operation]
    func applyPut(id: Int, bytes: RecordBytes) throws(StoreError)
    func applyDelete(id: Int)
    func contains(_ id: Int) -> Bool
}

/// The records of one type: by id, and through the indexes declared when the table was opened.
/// Reads and writes may come from any thread (the store's lock guards them).
public final class Table<R: Record>: AnyTable, @unchecked Sendable {
    /// Strong: a table keeps its store open. `Store.close()` breaks the cycle.
    private let store: Store
    private var rows: [Int: R] = [:]
    private var nextID = 1
    private let indexes: [Index<R>]
    /// Per index: key → ids in increasing order (ids are monotonic, so appending keeps order).
    private var buckets: [[AnyHashable: [Int]]]

    init(store: Store, indexes: [Index<R>]) {
        self.store = store
        self.indexes = indexes
        buckets = Array(repeating: [:], count: indexes.count)
    }

    // MARK: Writes (each is a transaction of one change)

    /// Adds a record and returns its id (ids increase and are never reused).
    @discardableResult
    public func insert(_ record: R) throws(StoreError) -> Int {
        let id = reserveID()
        try store.commit([Operation(kind: .put, type: R.typeName, id: id, bytes: Operation.bytes(of: record), isUpdate: false)])
        return id
    }

    /// Replaces the record `id`.
    public func update(_ id: Int, to record: R) throws(StoreError) {
        try store.commit([Operation(kind: .put, type: R.typeName, id: id, bytes: Operation.bytes(of: record), isUpdate: true)])
    }

    /// Removes the record `id`.
    public func delete(_ id: Int) throws(StoreError) {
        try store.commit([Operation(kind: .delete, type: R.typeName, id: id, bytes: RecordBytes([]), isUpdate: false)])
    }

    // MARK: Reads

    /// The record `id`, if any.
    public func get(_ id: Int) -> R? {
        store.lock.withLock { rows[id] }
    }

    /// Number of records.
    public var count: Int { store.lock.withLock { rows.count } }

    /// Every record, by increasing id.
    public func all() -> [(id: Int, record: R)] {
        store.lock.withLock { rows.sorted { $0.key < $1.key }.map { ($0.key, $0.value) } }
    }

    /// Records whose indexed field `keyPath` equals `value`, newest (highest id) first unless
    /// `newestFirst` is false. Average O(1) to find them; `keyPath` must be one of the indexes.
    public func lookup<K: Hashable & Sendable>(_ keyPath: KeyPath<R, K> & Sendable, _ value: K, newestFirst: Bool = true) -> [(id: Int, record: R)] {
        store.lock.withLock {
            guard let i = indexes.firstIndex(where: { $0.keyPath == keyPath }) else {
                preconditionFailure("\(keyPath) is not an index of \(R.typeName); declare it when opening the table")
            }
            let ids = buckets[i][AnyHashable(value)] ?? []
            let ordered = newestFirst ? Array(ids.reversed()) : ids
            return ordered.compactMap { id in rows[id].map { (id, $0) } }
        }
    }

    /// The one record whose indexed field equals `value`; nil if none, `.notUnique` if several.
    public func unique<K: Hashable & Sendable>(_ keyPath: KeyPath<R, K> & Sendable, _ value: K) throws(StoreError) -> (id: Int, record: R)? {
        let found = lookup(keyPath, value, newestFirst: false)
        guard found.count <= 1 else { throw .notUnique }
        return found.first
    }

    // MARK: Applying changes (under the store's lock)

    func reserveID() -> Int {
        store.lock.withLock {
            let id = nextID
            nextID += 1
            return id
        }
    }

    func contains(_ id: Int) -> Bool { rows[id] != nil }

    /// Decodes the records replayed from the log, in id order (so index buckets stay sorted by
    /// appending).
    func load(_ raw: [Int: RecordBytes]) throws(StoreError) {
        rows.reserveCapacity(raw.count)
        for id in raw.keys.sorted() {
            let record = try R(from: RecordReader(raw[id].unsafelyUnwrapped))
            rows[id] = record
            for (i, index) in indexes.enumerated() {
                buckets[i][index.key(record), default: []].append(id)
            }
            if id >= nextID { nextID = id + 1 }
        }
    }

    func snapshotOperations() -> [Operation] {
        rows.sorted { $0.key < $1.key }.map {
            Operation(kind: .put, type: R.typeName, id: $0.key, bytes: Operation.bytes(of: $0.value), isUpdate: false)
        }
    }

    func applyPut(id: Int, bytes: RecordBytes) throws(StoreError) {
        let record = try R(from: RecordReader(bytes))
        if let old = rows[id] { unindex(old, id: id) }
        rows[id] = record
        for (i, index) in indexes.enumerated() {
            let key = index.key(record)
            var ids = buckets[i][key] ?? []
            if let last = ids.last, last > id {
                ids.insert(id, at: ids.firstIndex { $0 > id } ?? ids.count)
            } else {
                ids.append(id)
            }
            buckets[i][key] = ids
        }
        if id >= nextID { nextID = id + 1 }
    }

    func applyDelete(id: Int) {
        guard let old = rows.removeValue(forKey: id) else { return }
        unindex(old, id: id)
    }

    private func unindex(_ record: R, id: Int) {
        for (i, index) in indexes.enumerated() {
            let key = index.key(record)
            buckets[i][key]?.removeAll { $0 == id }
            if buckets[i][key]?.isEmpty == true { buckets[i][key] = nil }
        }
    }
}
