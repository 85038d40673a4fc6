import Glibc
import NeedletailPOSIX

/// When appended entries reach the disk (Redis's appendfsync).
public enum FsyncPolicy: Sendable {
    /// A commit returns only after its entry is on disk. Writers that commit at the same time
    /// share one fdatasync (group commit). If an fdatasync fails, the commits it covered and
    /// every later one throw until the store is reopened (the kernel may have dropped the
    /// unwritten pages: a later sync that succeeds would prove nothing).
    case always
    /// A background thread syncs once a second: a crash loses at most about a second.
    case everySecond
    /// The kernel decides.
    case never
}

/// Records, typed and indexed, in memory, made durable by a checksummed append-only log.
///
/// ```swift
/// let store = try Store(path: "data/board.log")
/// let messages = try store.table(Message.self, indexes: [Index(\.forum), Index(\.author)])
/// let id = try messages.insert(Message(forum: "Debian", text: "hi", author: "ann", time: 0))
/// let debian = messages.lookup(\.forum, "Debian")          // newest first
/// try store.transaction { tx in                                // all or nothing
///     tx.delete(id, from: messages)
///     tx.insert(Message(...), into: messages)
/// }
/// ```
///
/// Safe from any thread: one lock guards the tables and the log's tail; readers never see half a
/// transaction. With `.always`, a commit waits for its fdatasync outside the lock, so
/// concurrent commits share one.
public final class Store: @unchecked Sendable {
    public let path: String
    public let policy: FsyncPolicy
    /// What opening the log found (entries replayed, bytes cut from a torn tail).
    public let recovery: Recovery

    /// The report of opening a log.
    public struct Recovery: Sendable, Equatable, CustomStringConvertible {
        public let entries: Int
        public let cutBytes: Int
        public let cutAt: Int?
        public var description: String {
            if let at = cutAt { return "recovered \(entries) entries, cut \(cutBytes) bytes at offset \(at)" }
            return "recovered \(entries) entries"
        }
    }

    @usableFromInline let lock = PThreadLock()
    private let log: LogFile
    /// Record bytes replayed for types whose table is not open yet, by type name and id.
    private var unclaimed: [String: DenseRows<RecordBytes>] = [:]
    private var tables: [String: AnyTable] = [:]
    private let durability = GroupSync()
    private var syncThread: pthread_t?
    private var closed = false
    /// The log's size when it was handed to another process (`suspend`); nil while this one has it.
    private var suspendedAt: Int?

    /// Opens (or creates) the store whose log is at `path`, replaying it. A torn last entry is
    /// cut and reported in `recovery`; damage before the end is an error unless `repair` (which
    /// keeps the entries before the damage). Waits up to `lockTimeout` seconds for another
    /// process to release the log.
    public init(path: String, fsync policy: FsyncPolicy = .always, repair: Bool = false, lockTimeout: Double = 5) throws(StoreError) {
        self.path = path
        self.policy = policy
        var unclaimed: [String: DenseRows<RecordBytes>] = [:]
        log = try LogFile(path: path, repair: repair, lockTimeout: lockTimeout) { payload throws(StoreError) in
            let ops = try Operation.decode(payload)
            var i = 0
            while i < ops.count {
                // A run of changes to one type goes into its dictionary without re-hashing the name.
                let type = ops[i].type
                var rows = unclaimed.removeValue(forKey: type) ?? DenseRows()
                while i < ops.count && ops[i].type == type {
                    let op = ops[i]
                    guard rows.canHold(op.id) else { throw StoreError.corrupt("record id \(op.id) out of range") }
                    switch op.kind {
                    case .put: rows[op.id] = op.bytes
                    case .delete: rows[op.id] = nil
                    }
                    i += 1
                }
                unclaimed[type] = rows
            }
        }
        self.unclaimed = unclaimed
        let r = log.recovery
        recovery = Recovery(entries: r.entries, cutBytes: r.cutBytes, cutAt: r.cutAt)
        if policy != .never { try durability.start(write: log.write, sync: log.sync) }
        if policy == .everySecond { try startSyncThread() }
    }

    deinit { close() }

    /// Syncs and releases the log (and the lock on it). Further writes fail; tables keep
    /// answering reads from memory. Call it when done: tables keep their store alive.
    public func close() {
        let first: Bool = lock.withLock {
            if closed { return false }
            closed = true
            return true
        }
        guard first else { return }
        if let t = syncThread { pthread_join(t, nil) }
        durability.stop()
        lock.withLock {
            try? log.sync()
            log.close()
            tables.removeAll()  // tables hold the store; this lets both go
        }
    }

    /// Hands the log to another process (a new build taking over, docs/UPGRADE.md): writes and
    /// syncs everything committed, then releases the log's lock so that the other process can
    /// open the store; the records stay in memory for reads, and commits fail until `resume`.
    /// Call it once no commit is in flight (the server has drained).
    public func suspend() throws(StoreError) {
        try lock.withLock { () throws(StoreError) in
            guard !closed, suspendedAt == nil else { return }
            if policy != .never {
                try durability.pause()
                do throws(StoreError) {
                    try log.sync()
                } catch {
                    durability.resume()
                    throw error
                }
                durability.allDurable()
            } else {
                try log.sync()
            }
            suspendedAt = log.size
            log.unlock()
        }
    }

    /// Takes the log back after `suspend` (the other process failed before writing to it):
    /// an error if another process holds it now or has changed it (then only reopening the
    /// store shows what it holds).
    public func resume() throws(StoreError) {
        try lock.withLock { () throws(StoreError) in
            guard !closed, let size = suspendedAt else { return }
            guard log.relock(expectingSize: size) else {
                throw .locked("\(path) was taken or changed by another process since it was handed over; restart to reopen it")
            }
            suspendedAt = nil
        }
    }

    /// Whether the log is handed to another process (`suspend`).
    public var isSuspended: Bool { lock.withLock { suspendedAt != nil } }

    /// The table of `R` records, created on first use (replayed records are decoded then).
    /// `indexes` are built now and kept up to date.
    public func table<R: Record>(_ type: R.Type, indexes: [Index<R>] = []) throws(StoreError) -> RecordTable<R> {
        try lock.withLock { () throws(StoreError) -> RecordTable<R> in
            if let t = tables[R.typeName] {
                guard let typed = t as? RecordTable<R> else { throw .corrupt("type name \(R.typeName) used by two record types") }
                return typed
            }
            let t = RecordTable<R>(store: self, indexes: indexes)
            try t.load(unclaimed.removeValue(forKey: R.typeName) ?? DenseRows())
            tables[R.typeName] = t
            return t
        }
    }

    /// Runs `body` to collect changes, then commits them as one log entry: all of them or none,
    /// in memory and on disk. Nothing is applied if `body` throws or a change is invalid.
    @discardableResult
    public func transaction<T>(_ body: (inout Transaction) throws -> T) throws -> T {
        var tx = Transaction(store: self)
        let result = try body(&tx)
        try commit(tx.operations)
        return result
    }

    /// The same from a task: it suspends until the commit is durable (with `.always`) instead of
    /// blocking its thread. `try await store.transaction { tx in … }`.
    @discardableResult
    public func transaction<T>(_ body: (inout Transaction) throws -> T) async throws -> T {
        var tx = Transaction(store: self)
        let result = try body(&tx)
        try await commit(tx.operations)
        return result
    }

    /// Encodes, appends, applies, and (with `.always`) waits until durable.
    ///
    /// With `.always` the entry is not written here: its space in the log is claimed and the
    /// bytes handed to the sync thread, which writes every entry of a group with one pwrite
    /// before the group's fdatasync (the writer would otherwise make one pwrite of its own
    /// under the store's lock).
    func commit(_ ops: [Operation]) throws(StoreError) {
        if let number = try append(ops) { try durability.waitUntilDurable(number) }
    }

    /// `commit` for a task: it suspends until the group's fdatasync covers the entry (its loop
    /// serves others meanwhile: every commit in flight, on any loop, shares that sync) and
    /// resumes where it ran.
    func commit(_ ops: [Operation]) async throws(StoreError) {
        if let number = try append(ops) { try await durability.durable(number) }
    }

    /// Encodes, appends and applies `ops`; the commit's number when it must still be waited for
    /// (`.always`), nil when it is done.
    private func append(_ ops: [Operation]) throws(StoreError) -> Int? {
        guard !ops.isEmpty else { return nil }
        let entry = try Operation.entry(ops)
        let deferred = policy == .always
        let number: Int = try lock.withLock { () throws(StoreError) -> Int in
            guard !closed else { throw .io("store \(path) is closed") }
            guard suspendedAt == nil else { throw .io("store \(path) has been handed to another process") }
            // Check first, so that an invalid change leaves both memory and log untouched.
            for op in ops where op.kind == .delete || op.isUpdate {
                guard let t = tables[op.type], t.contains(op.id) else { throw .notFound(op.id) }
            }
            let number: Int
            if deferred {
                number = durability.appended(entry, at: try log.claim(entry.count))
            } else {
                try log.append(entry)
                number = durability.appendedOne()
            }
            for op in ops {
                guard let t = tables[op.type] else { continue }
                switch op.kind {
                case .put: try t.applyPut(id: op.id, bytes: op.bytes)
                case .delete: t.applyDelete(id: op.id)
                }
            }
            return number
        }
        return deferred ? number : nil
    }

    /// Rewrites the log as one put per live record (a snapshot) followed by whatever was
    /// committed meanwhile, and swaps it in with an atomic rename. Writers go on while the
    /// snapshot is written; they wait only while the tail is copied and the file renamed.
    /// Returns the bytes saved.
    @discardableResult
    public func compact() throws(StoreError) -> Int {
        // 1. Under the lock: the live records as payloads, and where the log ends now.
        let (entries, mark) = try lock.withLock { () throws(StoreError) -> ([[UInt8]], Int) in
            guard !closed else { throw .io("store \(path) is closed") }
            guard suspendedAt == nil else { throw .io("store \(path) has been handed to another process") }
            var ops: [Operation] = []
            for (type, rows) in unclaimed {
                for (id, bytes) in rows.entries { ops.append(Operation(kind: .put, type: type, id: id, bytes: bytes, isUpdate: false)) }
            }
            for t in tables.values { ops += t.snapshotOperations() }
            // Batches of up to 1,000 records per entry.
            var entries: [[UInt8]] = []
            var i = 0
            while i < ops.count {
                entries.append(try Operation.entry(Array(ops[i..<min(i + 1000, ops.count)])))
                i += 1000
            }
            return (entries, log.length)
        }
        // 2. Without the lock: write and sync the snapshot.
        let (fd, written) = try LogFile.writeCompacted(path: path, entries: entries)
        // 3. Under the lock again: the entries committed meanwhile, then the swap.
        return try lock.withLock { () throws(StoreError) -> Int in
            do throws(StoreError) {
                // No sync may run on the descriptor the swap closes; entries not written yet
                // are written now, so that the tail copied below holds them.
                try durability.pause()
                let old = log.length
                let end = try log.copyTail(from: mark, to: fd, at: written)
                try log.replace(with: fd, length: end)
                durability.allDurable()
                return old - end
            } catch {
                durability.resume()
                Glibc.close(fd)
                unlink(path + ".compact")
                throw error
            }
        }
    }

    private func startSyncThread() throws(StoreError) {
        do {
            syncThread = try POSIXThread.spawn(name: "store fsync 1s") { [self] in
                var ticks = 0
                while !lock.withLock({ closed }) {
                    usleep(200_000)
                    ticks += 1
                    if ticks % 5 == 0 { try? durability.waitUntilDurable(durability.lastAppended) }
                }
            }
        } catch {
            throw StoreError.io("cannot start the once-a-second sync thread: \(error)")
        }
    }

    /// fdatasyncs completed so far (commits in flight share one: with many writers this is far
    /// below the number of commits).
    public var syncCount: Int { durability.syncCount }

    /// Log size in bytes (tests, reports).
    public var logLength: Int { lock.withLock { log.length } }
}

/// Changes collected by `Store.transaction`; ids of inserted records are known at once.
public struct Transaction {
    let store: Store
    var operations: [Operation] = []

    /// Adds `record` to `table`; returns its new id.
    @discardableResult
    public mutating func insert<R: Record>(_ record: R, into table: RecordTable<R>) -> Int {
        let id = table.reserveID()
        operations.append(Operation(kind: .put, type: R.typeName, id: id, bytes: Operation.bytes(of: record), isUpdate: false))
        return id
    }

    /// Replaces the record `id` of `table` (the commit fails if there is none).
    public mutating func update<R: Record>(_ id: Int, to record: R, in table: RecordTable<R>) {
        operations.append(Operation(kind: .put, type: R.typeName, id: id, bytes: Operation.bytes(of: record), isUpdate: true))
    }

    /// Removes the record `id` of `table` (the commit fails if there is none).
    public mutating func delete<R: Record>(_ id: Int, from table: RecordTable<R>) {
        operations.append(Operation(kind: .delete, type: R.typeName, id: id, bytes: RecordBytes([]), isUpdate: false))
    }
}

/// One change in a log entry.
struct Operation {
    enum Kind: UInt8 {
        case put = 1
        case delete = 2
    }
    var kind: Kind
    var type: String
    var id: Int
    var bytes: RecordBytes
    var isUpdate: Bool

    static func bytes<R: Record>(of record: R) -> RecordBytes {
        var w = RecordWriter()
        record.encode(to: &w)
        return RecordBytes(w.bytes)
    }

    /// A sealed log entry (`LogFile.seal`) whose payload is: u8 format (1), u32 count, then per
    /// change: u8 kind, u16 type-name length, the name, u64 id, and for a put u32 length + the
    /// record's fields.
    static func entry(_ ops: [Operation]) throws(StoreError) -> [UInt8] {
        var w = RecordWriter()
        w.bytes.append(contentsOf: repeatElement(0, count: LogFile.entryHeaderLength))
        w.bytes.append(1)
        w.appendLE(UInt32(ops.count))
        for op in ops {
            w.bytes.append(op.kind.rawValue)
            w.appendLE(UInt16(op.type.utf8.count))
            w.bytes += op.type.utf8
            w.appendLE(UInt64(op.id))
            if op.kind == .put {
                w.appendLE(UInt32(op.bytes.count))
                w.bytes += op.bytes.storage[op.bytes.range]
            }
        }
        try LogFile.seal(&w.bytes)
        return w.bytes
    }

    static func decode(_ p: [UInt8]) throws(StoreError) -> [Operation] {
        var i = 0
        func need(_ n: Int) throws(StoreError) { if i + n > p.count { throw .corrupt("log entry ends early") } }
        try need(5)
        guard p[0] == 1 else { throw .corrupt("unknown entry format \(p[0])") }
        let count = Int(readLE(UInt32.self, p, 1))
        i = 5
        var ops: [Operation] = []
        ops.reserveCapacity(min(count, 100_000))
        var lastType: String?
        var lastTypeBytes: [UInt8] = []
        for _ in 0..<count {
            try need(3)
            guard let kind = Kind(rawValue: p[i]) else { throw .corrupt("unknown change kind \(p[i])") }
            let nameLength = Int(readLE(UInt16.self, p, i + 1))
            i += 3
            try need(nameLength + 8)
            // Entries hold many changes to one type: make its name once.
            if lastType == nil || !p[i..<(i + nameLength)].elementsEqual(lastTypeBytes) {
                lastType = String(decoding: p[i..<(i + nameLength)], as: UTF8.self)
                lastTypeBytes = Array(p[i..<(i + nameLength)])
            }
            let type = lastType!
            i += nameLength
            guard let id = Int(exactly: readLE(UInt64.self, p, i)) else {
                throw .corrupt("record id \(readLE(UInt64.self, p, i)) out of range")
            }
            i += 8
            var bytes = RecordBytes([])
            if kind == .put {
                try need(4)
                let n = Int(readLE(UInt32.self, p, i))
                i += 4
                try need(n)
                bytes = RecordBytes(storage: p, range: i..<(i + n))  // no copy: shares the entry
                i += n
            }
            ops.append(Operation(kind: kind, type: type, id: id, bytes: bytes, isUpdate: false))
        }
        return ops
    }
}
