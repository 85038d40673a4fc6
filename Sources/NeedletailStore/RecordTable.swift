/// An index over one field of a record type: `Index(\Message.forum)`.
public struct Index<R: Record>: Sendable {
    let keyPath: PartialKeyPath<R> & Sendable
    let makeStorage: @Sendable () -> IndexStorage<R>

    public init<K: Hashable & Sendable>(_ keyPath: KeyPath<R, K> & Sendable) {
        self.keyPath = keyPath
        makeStorage = { TypedIndexStorage<R, K>(keyPath) }
    }
}

/// One index of a table, resolved once: `let byForum = messages.index(\Message.forum)`, then
/// `messages.lookup(byForum, "swift")`. What a prepared statement is to SQL: the key path is
/// matched to its index when the handle is made, not on every lookup.
public struct IndexHandle<R: Record, K: Hashable & Sendable>: @unchecked Sendable {
    // The storage is only read under the table's store lock, like the table's own state.
    @usableFromInline let table: RecordTable<R>
    @usableFromInline let storage: TypedIndexStorage<R, K>

    init(table: RecordTable<R>, storage: TypedIndexStorage<R, K>) {
        self.table = table
        self.storage = storage
    }
}

/// The ids of the records per key of one index, in increasing id order.
@usableFromInline
class IndexStorage<R: Record> {
    func add(_ record: R, id: Int) {}
    func remove(_ record: R, id: Int) {}
}

/// An index's buckets with the key's own type: hashing and comparing `K` directly (an
/// `AnyHashable` key costs several times more per lookup).
@usableFromInline
final class TypedIndexStorage<R: Record, K: Hashable>: IndexStorage<R> {
    let keyPath: KeyPath<R, K>
    // Runtime exclusivity checks are off: every access is under the store's lock. A dictionary,
    // not a Set of entries, by measurement (docs/PERFORMANCE.md).
    @usableFromInline @exclusivity(unchecked) var buckets: [K: IDs] = [:]

    init(_ keyPath: KeyPath<R, K>) { self.keyPath = keyPath }

    // One hash lookup, then the bucket changed in place through `values[i]`: this code is
    // generic over K and runs unspecialized, and each dictionary call pays for its generic
    // metadata (a read and two writes per post cost 6,000 instructions, callgrind).
    override func add(_ record: R, id: Int) {
        let key = record[keyPath: keyPath]
        guard let i = buckets.index(forKey: key) else {
            buckets[key] = .one(id)
            return
        }
        buckets.values[i].insert(id)
    }

    override func remove(_ record: R, id: Int) {
        let key = record[keyPath: keyPath]
        guard let i = buckets.index(forKey: key) else { return }
        if buckets.values[i].remove(id) { buckets.remove(at: i) }
    }
}

/// The ids under one key of an index, in increasing order. A key held by one record (a unique
/// field, or most keys of a selective one) keeps its id inline: no array to allocate, and one
/// memory access less per lookup (at a million records, a lookup took 260 ns with an array per
/// key).
@usableFromInline
enum IDs {
    case one(Int)
    case many([Int])

    /// Adds `id`, keeping the order.
    mutating func insert(_ id: Int) {
        switch self {
        case .one(let other): self = .many(other < id ? [other, id] : [id, other])
        case .many(var ids):
            self = .one(0)  // drop this enum's reference so the append does not copy
            if let last = ids.last, last > id {
                ids.insert(id, at: ids.firstIndex { $0 > id } ?? ids.count)
            } else {
                ids.append(id)
            }
            self = .many(ids)
        }
    }

    /// Removes `id`; true when no id is left (the key should go).
    mutating func remove(_ id: Int) -> Bool {
        switch self {
        case .one(let other): return other == id
        case .many(var ids):
            self = .one(0)
            ids.removeAll { $0 == id }
            self = ids.count == 1 ? .one(ids[0]) : .many(ids)
            return ids.isEmpty
        }
    }

    @inlinable var count: Int {
        switch self {
        case .one: return 1
        case .many(let ids): return ids.count
        }
    }

    /// Calls `body` with each id, highest first if `newestFirst`.
    @inlinable func forEach<E: Error>(newestFirst: Bool, _ body: (Int) throws(E) -> Void) throws(E) {
        switch self {
        case .one(let id): try body(id)
        case .many(let ids):
            if newestFirst {
                for id in ids.reversed() { try body(id) }
            } else {
                for id in ids { try body(id) }
            }
        }
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
public final class RecordTable<R: Record>: AnyTable, @unchecked Sendable {
    /// Strong: a table keeps its store open. `Store.close()` breaks the cycle.
    @usableFromInline let store: Store
    // Guarded by the store's lock, hence no runtime exclusivity checks (see `buckets`).
    @usableFromInline @exclusivity(unchecked) var rows = DenseRows<R>()
    @exclusivity(unchecked) private var nextID = 1
    private let indexes: [Index<R>]
    /// Per index: key → ids in increasing order (ids are monotonic, so appending keeps order).
    @usableFromInline let storages: [IndexStorage<R>]
    /// Key paths seen in lookups, by identity, with the index they name (comparing key paths
    /// for equality is slow; each literal is one object, so identity hits after the first use).
    @exclusivity(unchecked) private var keyPathAliases: [(AnyKeyPath, Int)] = []
    /// The key path of the last lookup and its index: most callers look up through one index.
    @exclusivity(unchecked) private var lastKeyPath: AnyKeyPath?
    @exclusivity(unchecked) private var lastIndex = 0

    init(store: Store, indexes: [Index<R>]) {
        self.store = store
        self.indexes = indexes
        storages = indexes.map { $0.makeStorage() }
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

    /// `insert` from a task: suspends until the record is durable (with `.always`; its loop
    /// serves others, and the commits in flight share one fdatasync), then returns its id.
    @discardableResult
    public func insert(_ record: R) async throws(StoreError) -> Int {
        let id = reserveID()
        try await store.commit([Operation(kind: .put, type: R.typeName, id: id, bytes: Operation.bytes(of: record), isUpdate: false)])
        return id
    }

    /// `update` from a task (see the async `insert`).
    public func update(_ id: Int, to record: R) async throws(StoreError) {
        try await store.commit([Operation(kind: .put, type: R.typeName, id: id, bytes: Operation.bytes(of: record), isUpdate: true)])
    }

    /// `delete` from a task (see the async `insert`).
    public func delete(_ id: Int) async throws(StoreError) {
        try await store.commit([Operation(kind: .delete, type: R.typeName, id: id, bytes: RecordBytes([]), isUpdate: false)])
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
        store.lock.withLock { rows.entries.map { ($0.id, $0.value) } }
    }

    /// Records whose indexed field `keyPath` equals `value`, newest (highest id) first unless
    /// `newestFirst` is false. Average O(1) to find them; `keyPath` must be one of the indexes.
    @inlinable
    public func lookup<K: Hashable & Sendable>(
        _ keyPath: KeyPath<R, K> & Sendable, _ value: K, newestFirst: Bool = true
    ) -> [(id: Int, record: R)] {
        store.lock.withLock { records(ids(keyPath, value), newestFirst: newestFirst) }
    }

    /// `lookup(keyPath, value)` through an index resolved once (`index(_:)`): no key path to
    /// instantiate and match per call, like a prepared statement.
    @inlinable
    public func lookup<K: Hashable & Sendable>(_ index: IndexHandle<R, K>, _ value: K, newestFirst: Bool = true) -> [(id: Int, record: R)] {
        precondition(index.table === self, "an index handle of another table")
        return store.lock.withLock { records(index.storage.buckets[value], newestFirst: newestFirst) }
    }

    /// The one record whose indexed field equals `value`; nil if none, `.notUnique` if several.
    /// Allocates nothing (the fastest indexed read: no result array).
    @inlinable
    public func unique<K: Hashable & Sendable>(_ keyPath: KeyPath<R, K> & Sendable, _ value: K) throws(StoreError) -> (id: Int, record: R)?
    {
        try store.lock.withLock { () throws(StoreError) -> (id: Int, record: R)? in try single(ids(keyPath, value)) }
    }

    /// `unique(keyPath, value)` through an index resolved once (`index(_:)`).
    @inlinable
    public func unique<K: Hashable & Sendable>(_ index: IndexHandle<R, K>, _ value: K) throws(StoreError) -> (id: Int, record: R)? {
        precondition(index.table === self, "an index handle of another table")
        return try store.lock.withLock { () throws(StoreError) -> (id: Int, record: R)? in try single(index.storage.buckets[value]) }
    }

    /// The index of `keyPath`, resolved once, for `lookup` and `unique` (`keyPath` must be one
    /// of the indexes declared when the table was opened).
    public func index<K: Hashable & Sendable>(_ keyPath: KeyPath<R, K> & Sendable) -> IndexHandle<R, K> {
        store.lock.withLock { IndexHandle(table: self, storage: storage(keyPath)) }
    }

    /// The storage of the index of `keyPath` (called under the store's lock).
    @inlinable
    func storage<K: Hashable & Sendable>(_ keyPath: KeyPath<R, K> & Sendable) -> TypedIndexStorage<R, K> {
        // The index at this position was made for this key path, hence for `K`.
        unsafeDowncast(storages[indexPosition(keyPath)], to: TypedIndexStorage<R, K>.self)
    }

    /// The ids under `value` in the index of `keyPath` (called under the store's lock; read in
    /// place, not through `storage(_:)`: docs/PERFORMANCE.md).
    @inlinable
    func ids<K: Hashable & Sendable>(_ keyPath: KeyPath<R, K> & Sendable, _ value: K) -> IDs? {
        unsafeDowncast(storages[indexPosition(keyPath)], to: TypedIndexStorage<R, K>.self).buckets[value]
    }

    /// The records of `ids` (called under the store's lock).
    @inlinable
    func records(_ ids: IDs?, newestFirst: Bool) -> [(id: Int, record: R)] {
        guard let ids else { return [] }
        if case .one(let id) = ids {
            // One record (the common case of a selective index): an array literal is
            // allocated at its size, with no growth path.
            guard let r = rows[id] else { return [] }
            return [(id, r)]
        }
        var out: [(id: Int, record: R)] = []
        out.reserveCapacity(ids.count)
        ids.forEach(newestFirst: newestFirst) { id in if let r = rows[id] { out.append((id, r)) } }
        return out
    }

    /// The one record of `ids`, if any (called under the store's lock).
    @inlinable
    func single(_ ids: IDs?) throws(StoreError) -> (id: Int, record: R)? {
        guard let ids else { return nil }
        var found: (id: Int, record: R)?
        try ids.forEach(newestFirst: false) { id throws(StoreError) in
            guard let r = rows[id] else { return }
            if found != nil { throw .notUnique }
            found = (id, r)
        }
        return found
    }

    /// Which index serves `keyPath` (called under the store's lock).
    @usableFromInline
    func indexPosition(_ keyPath: AnyKeyPath) -> Int {
        if keyPath === lastKeyPath { return lastIndex }
        for (alias, i) in keyPathAliases where alias === keyPath {
            (lastKeyPath, lastIndex) = (keyPath, i)
            return i
        }
        guard let i = indexes.firstIndex(where: { $0.keyPath == keyPath }) else {
            preconditionFailure("\(keyPath) is not an index of \(R.typeName); declare it when opening the table")
        }
        if keyPathAliases.count < 64 { keyPathAliases.append((keyPath, i)) }
        (lastKeyPath, lastIndex) = (keyPath, i)
        return i
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
    func load(_ raw: DenseRows<RecordBytes>) throws(StoreError) {
        rows.reserveCapacity(raw.slots.count)
        try raw.forEach { (id, bytes) throws(StoreError) in
            let record = try R(from: RecordReader(bytes))
            rows[id] = record
            for storage in storages { storage.add(record, id: id) }
            if id >= nextID { nextID = id + 1 }
        }
    }

    func snapshotOperations() -> [Operation] {
        rows.entries.map {
            Operation(kind: .put, type: R.typeName, id: $0.id, bytes: Operation.bytes(of: $0.value), isUpdate: false)
        }
    }

    func applyPut(id: Int, bytes: RecordBytes) throws(StoreError) {
        guard rows.canHold(id) else { throw .corrupt("record id \(id) out of range") }
        let record = try R(from: RecordReader(bytes))
        if let old = rows[id] { unindex(old, id: id) }
        rows[id] = record
        for storage in storages { storage.add(record, id: id) }
        if id >= nextID { nextID = id + 1 }
    }

    func applyDelete(id: Int) {
        guard let old = rows[id] else { return }
        rows[id] = nil
        unindex(old, id: id)
    }

    private func unindex(_ record: R, id: Int) {
        for storage in storages { storage.remove(record, id: id) }
    }
}
