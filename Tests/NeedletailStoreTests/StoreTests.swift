import Glibc
import NeedletailPOSIX
@testable import NeedletailStore
import Synchronization
import Testing

struct Message: Record, Equatable {
    static let typeName = "message"
    var forum: String
    var text: String
    var author: String
    var time: Int

    init(forum: String, text: String, author: String = "ann", time: Int = 0) {
        self.forum = forum
        self.text = text
        self.author = author
        self.time = time
    }

    func encode(to w: inout RecordWriter) {
        w.write(1, forum)
        w.write(2, text)
        w.write(3, author)
        w.write(4, time)
    }

    init(from r: RecordReader) throws(StoreError) {
        forum = try r.string(1)
        text = try r.string(2)
        author = try r.string(3)
        time = try r.int(4)
    }
}

/// The same type a version later: one more field, read with a default.
struct MessageV2: Record, Equatable {
    static let typeName = "message"
    var forum: String
    var text: String
    var pinned: Bool

    func encode(to w: inout RecordWriter) {
        w.write(1, forum)
        w.write(2, text)
        w.write(5, pinned)
    }

    init(forum: String, text: String, pinned: Bool) {
        self.forum = forum
        self.text = text
        self.pinned = pinned
    }

    init(from r: RecordReader) throws(StoreError) {
        forum = try r.string(1)
        text = try r.string(2)
        pinned = try r.bool(5, default: false)
    }
}

func tempLogPath(_ name: String = "store") -> String {
    var template = Array("/tmp/needletail-store-XXXXXX".utf8CString)
    let dir = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    return dir + "/\(name).log"
}

/// A closed log holding `count` messages ("0", "1", …): its path and where its entries end
/// (the reserved zeros follow).
func logWithMessages(_ count: Int) throws -> (path: String, logical: Int) {
    let path = tempLogPath()
    let store = try Store(path: path)
    let t = try store.table(Message.self)
    for i in 0..<count { try t.insert(Message(forum: "f", text: "\(i)")) }
    let logical = store.logLength
    store.close()
    return (path, logical)
}

func fileBytes(_ path: String) -> [UInt8] {
    guard let f = fopen(path, "rb") else { return [] }
    defer { fclose(f) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = fread(&buf, 1, buf.count, f)
        if n <= 0 { break }
        out += buf[0..<n]
    }
    return out
}

func writeFile(_ path: String, _ bytes: [UInt8]) {
    let f = fopen(path, "wb")!
    _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, bytes.count, f) }
    fclose(f)
}

@Suite("Records store")
struct StoreTests {
    @Test func everyCall() throws {
        let path = tempLogPath()
        let store = try Store(path: path)
        let messages = try store.table(Message.self, indexes: [Index(\Message.forum), Index(\Message.author)])
        let a = try messages.insert(Message(forum: "Debian", text: "one"))
        let b = try messages.insert(Message(forum: "Debian", text: "two", author: "bob"))
        let c = try messages.insert(Message(forum: "Gentoo", text: "three"))
        #expect(a < b && b < c, "monotonic ids")
        #expect(messages.count == 3)
        #expect(messages.get(b)?.text == "two")
        #expect(messages.lookup(\Message.forum, "Debian").map(\.id) == [b, a], "newest first")
        #expect(messages.lookup(\Message.forum, "Debian", newestFirst: false).map(\.id) == [a, b])
        #expect(messages.lookup(\Message.forum, "Ubuntu").isEmpty)
        #expect(try messages.unique(\Message.author, "bob")?.id == b)
        #expect(throws: StoreError.notUnique) { try messages.unique(\Message.author, "ann") }
        // The same through index handles (resolved once, like prepared statements).
        let byForum = messages.index(\Message.forum), byAuthor = messages.index(\Message.author)
        #expect(messages.lookup(byForum, "Debian").map(\.id) == [b, a])
        #expect(messages.lookup(byForum, "Debian", newestFirst: false).map(\.id) == [a, b])
        #expect(messages.lookup(byForum, "Ubuntu").isEmpty)
        #expect(try messages.unique(byAuthor, "bob")?.id == b)
        #expect(try messages.unique(byAuthor, "zoe") == nil)
        #expect(throws: StoreError.notUnique) { try messages.unique(byAuthor, "ann") }
        try messages.update(b, to: Message(forum: "Gentoo", text: "moved", author: "bob"))
        #expect(messages.lookup(\Message.forum, "Gentoo").map(\.id) == [c, b])
        #expect(messages.lookup(byForum, "Gentoo").map(\.id) == [c, b], "a handle sees later changes")
        #expect(messages.lookup(\Message.forum, "Debian").map(\.id) == [a])
        try messages.delete(a)
        #expect(messages.get(a) == nil)
        #expect(messages.lookup(\Message.forum, "Debian").isEmpty)
        #expect(throws: StoreError.notFound(a)) { try messages.delete(a) }
        #expect(throws: StoreError.notFound(999)) { try messages.update(999, to: Message(forum: "x", text: "y")) }
        #expect(messages.all().map(\.id) == [b, c])
        store.close()

        // Reopened: the same records, indexes rebuilt, ids go on from the highest.
        let again = try Store(path: path)
        #expect(again.recovery.description == "recovered 5 entries")
        let m2 = try again.table(Message.self, indexes: [Index(\Message.forum)])
        #expect(
            m2.all().map(\.record) == [Message(forum: "Gentoo", text: "moved", author: "bob"), Message(forum: "Gentoo", text: "three")])
        #expect(m2.lookup(\Message.forum, "Gentoo").map(\.id) == [c, b])
        #expect(try m2.insert(Message(forum: "Ubuntu", text: "new")) > c)
    }

    @Test func transactionsAreAllOrNothing() throws {
        let path = tempLogPath()
        let store = try Store(path: path)
        let messages = try store.table(Message.self, indexes: [Index(\Message.forum)])
        let keep = try messages.insert(Message(forum: "Debian", text: "keep"))
        let lengthBefore = store.logLength
        // A change that cannot apply (delete of a missing id) rejects the whole transaction.
        #expect(throws: StoreError.notFound(12345)) {
            try store.transaction { tx in
                tx.insert(Message(forum: "Debian", text: "never"), into: messages)
                tx.delete(12345, from: messages)
            }
        }
        struct Abort: Error {}
        #expect(throws: Abort.self) {
            try store.transaction { tx in
                tx.insert(Message(forum: "Debian", text: "never either"), into: messages)
                throw Abort()
            }
        }
        #expect(messages.count == 1)
        #expect(store.logLength == lengthBefore, "nothing reached the log")
        let (x, y) = try store.transaction { tx in
            (tx.insert(Message(forum: "Gentoo", text: "x"), into: messages), tx.insert(Message(forum: "Gentoo", text: "y"), into: messages))
        }
        try store.transaction { tx in
            tx.delete(keep, from: messages)
            tx.update(x, to: Message(forum: "Gentoo", text: "x2"), in: messages)
        }
        store.close()
        let again = try Store(path: path)
        let m = try again.table(Message.self)
        #expect(m.all().map(\.record.text) == ["x2", "y"])
        #expect(m.get(y) != nil)
    }

    @Test func addedFieldLoadsOldLogsAndUnopenedTablesSurvive() throws {
        let path = tempLogPath()
        do {
            let store = try Store(path: path)
            let v1 = try store.table(Message.self)
            try v1.insert(Message(forum: "Debian", text: "old"))
            store.close()
        }
        let store = try Store(path: path)
        let v2 = try store.table(MessageV2.self)
        #expect(v2.all().map(\.record) == [MessageV2(forum: "Debian", text: "old", pinned: false)])
    }

    @Test func tornTailIsCutAndReported() throws {
        let (path, logical) = try logWithMessages(10)
        // The entries, then zeros reserved for appends (STORE-FORMAT.md).
        let file = fileBytes(path)
        #expect(file.count > logical && file[logical...].allSatisfy { $0 == 0 })
        let whole = Array(file[..<logical])
        // The last entry loses its final bytes, as if the machine died mid-write.
        writeFile(path, Array(whole.dropLast(5)))
        let store = try Store(path: path)
        #expect(store.recovery.entries == 9)
        #expect(store.recovery.cutAt != nil)
        #expect(store.recovery.description.hasPrefix("recovered 9 entries, cut "))
        #expect(try store.table(Message.self).count == 9)
        store.close()
        // An incomplete header at the end too.
        writeFile(path, fileBytes(path) + [7, 0, 0])
        let again = try Store(path: path)
        #expect(again.recovery.entries == 9 && again.recovery.cutBytes == 3)
        again.close()
    }

    @Test func tornWriteIntoReservedSpaceIsCut() throws {
        let (path, logical) = try logWithMessages(5)
        var file = fileBytes(path)
        // Part of a sixth entry reached the disk (its header and a few bytes), zeros after it.
        file.replaceSubrange(logical..<(logical + 12), with: [40, 0, 0, 0, 1, 2, 3, 4, 9, 9, 9, 9])
        writeFile(path, file)
        var store = try Store(path: path)
        // Cut: the entry as far as its header claimed (8 + 40 bytes).
        #expect(store.recovery.entries == 5 && store.recovery.cutAt == logical && store.recovery.cutBytes == 48)
        #expect(try store.table(Message.self).count == 5)
        let t = try store.table(Message.self)
        try t.insert(Message(forum: "f", text: "after"))
        store.close()
        // Or only later sectors of it did (its header is still zeros).
        file = fileBytes(path)
        let end = try Store(path: path).logLength
        file[end + 600] = 1
        writeFile(path, file)
        store = try Store(path: path)
        #expect(store.recovery.entries == 6 && store.recovery.cutAt == end && store.recovery.cutBytes == 601)
        #expect(try store.table(Message.self).all().map(\.record.text) == ["0", "1", "2", "3", "4", "after"])
        store.close()
    }

    @Test func damageInTheMiddleIsAnErrorUnlessRepaired() throws {
        let path = tempLogPath()
        var offsets: [Int] = []
        do {
            let store = try Store(path: path)
            let t = try store.table(Message.self)
            for i in 0..<10 {
                offsets.append(store.logLength)
                try t.insert(Message(forum: "f", text: "record \(i)"))
            }
            store.close()
        }
        var bytes = fileBytes(path)
        bytes[offsets[4] + 12] ^= 0x40  // flip a bit inside entry 4's payload
        writeFile(path, bytes)
        #expect(throws: StoreError.damaged(offset: offsets[4], reason: "checksum mismatch")) { try Store(path: path) }
        let repaired = try Store(path: path, repair: true)
        #expect(repaired.recovery.entries == 4)
        #expect(repaired.recovery.cutAt == offsets[4])
        #expect(try repaired.table(Message.self).all().map(\.record.text) == (0..<4).map { "record \($0)" })
    }

    @Test func notALogIsRefused() throws {
        let path = tempLogPath()
        writeFile(path, Array("hello, this is not a store".utf8))
        #expect(throws: StoreError.self) { try Store(path: path) }
    }

    @Test func secondOpenIsLockedOut() throws {
        let path = tempLogPath()
        let first = try Store(path: path)
        #expect(throws: StoreError.self) { try Store(path: path, lockTimeout: 0.1) }
        first.close()
    }

    @Test(arguments: [FsyncPolicy.always, .everySecond, .never])
    func concurrentWritersAndReaders(_ policy: FsyncPolicy) throws {
        let path = tempLogPath()
        let store = try Store(path: path, fsync: policy)
        let messages = try store.table(Message.self, indexes: [Index(\Message.forum)])
        let writers = 8, perWriter = 100
        let oddSeen = Atomic<Int>(0)
        let done = Atomic<Int>(0)
        var threads: [pthread_t] = []
        for w in 0..<writers {
            threads.append(
                try POSIXThread.spawn(name: "test") {
                    for i in 0..<perWriter {
                        // Two records per transaction: a reader must never see an odd count.
                        try? store.transaction { tx in
                            tx.insert(Message(forum: "w\(w)", text: "\(i)a"), into: messages)
                            tx.insert(Message(forum: "w\(w)", text: "\(i)b"), into: messages)
                        }
                    }
                    done.add(1, ordering: .relaxed)
                })
        }
        threads.append(
            try POSIXThread.spawn(name: "test") {
                while done.load(ordering: .relaxed) < writers {
                    if messages.count % 2 != 0 { oddSeen.add(1, ordering: .relaxed) }
                }
            })
        for t in threads { pthread_join(t, nil) }
        #expect(oddSeen.load(ordering: .relaxed) == 0)
        #expect(messages.count == writers * perWriter * 2)
        #expect(messages.lookup(\Message.forum, "w3").count == perWriter * 2)
        store.close()
        let again = try Store(path: path)
        #expect(try again.table(Message.self).count == writers * perWriter * 2)
    }
}

@Suite("Records store compaction")
struct CompactionTests {
    @Test func compactionKeepsEveryLiveRecordAndShrinksTheLog() throws {
        let path = tempLogPath()
        let store = try Store(path: path, fsync: .never)
        let t = try store.table(Message.self, indexes: [Index(\Message.forum)])
        var live: [Int: String] = [:]
        for i in 0..<2000 {
            let id = try t.insert(Message(forum: "f\(i % 3)", text: "v\(i)"))
            live[id] = "v\(i)"
        }
        for (id, _) in live where id % 2 == 0 {
            try t.update(id, to: Message(forum: "f9", text: "updated"))
            live[id] = "updated"
        }
        for id in live.keys where id % 5 == 0 {
            try t.delete(id)
            live[id] = nil
        }
        let before = store.logLength
        let saved = try store.compact()
        #expect(saved > 0 && store.logLength == before - saved)
        let after = try t.insert(Message(forum: "f1", text: "after compaction"))
        live[after] = "after compaction"
        store.close()
        let again = try Store(path: path)
        let m = try again.table(Message.self)
        #expect(Dictionary(uniqueKeysWithValues: m.all().map { ($0.id, $0.record.text) }) == live)
        #expect(access(path + ".compact", F_OK) != 0)
    }

    @Test func compactionWhileWritersGoOn() throws {
        let path = tempLogPath()
        let store = try Store(path: path, fsync: .always)
        let t = try store.table(Message.self)
        for i in 0..<500 { try t.insert(Message(forum: "seed", text: "\(i)")) }
        let done = Atomic<Int>(0)
        var threads: [pthread_t] = []
        for w in 0..<4 {
            threads.append(
                try POSIXThread.spawn(name: "test") {
                    for i in 0..<200 { _ = try? t.insert(Message(forum: "w\(w)", text: "\(i)")) }
                    done.add(1, ordering: .relaxed)
                })
        }
        var compactions = 0
        while done.load(ordering: .relaxed) < 4 {
            try store.compact()
            compactions += 1
        }
        for th in threads { pthread_join(th, nil) }
        #expect(compactions > 0)
        #expect(t.count == 500 + 4 * 200)
        store.close()
        #expect(try Store(path: path).table(Message.self).count == 500 + 4 * 200)
    }
}

@Suite struct CRC32CTests {
    @Test func knownValues() throws {
        // RFC 3720 B.4 check value, and lengths around the 8-byte step.
        let store = try Store(path: tempLogPath(), fsync: .never)
        store.close()
        #expect(crc32cOf(Array("123456789".utf8)) == 0xE306_9283)
        #expect(crc32cOf([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(crc32cOf([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(crc32cOf((0..<32).map { UInt8($0) }) == 0x46DD_794E)
    }
}

/// Rows by id: a far id (a failed run of transactions, a damaged or hostile log) must not
/// make the array grow; the fuzzer found a log whose one record at id ~10 million took
/// seconds to compact.
@Suite struct DenseRowsTests {
    @Test func farIdsAreOutliersUntilTheArrayReachesThem() throws {
        var rows = DenseRows<String>()
        rows[1] = "a"
        rows[2] = "b"
        rows[10_000_000] = "far"
        rows[500] = "mid"
        #expect(rows.slots.count == 2 && rows.outliers.count == 2)
        #expect(rows[10_000_000] == "far" && rows[500] == "mid" && rows[3] == nil && rows.count == 4)
        for id in 3...460 { rows[id] = "\(id)" }
        // 500 came within reach (460 + 64) and moved into the array.
        #expect(rows.outliers.keys.sorted() == [10_000_000] && rows[500] == "mid")
        #expect(rows.entries.map(\.id) == Array(1...460) + [500, 10_000_000])
        #expect(rows.lastID == 10_000_000)
        rows[10_000_000] = nil
        rows[500] = nil
        #expect(rows.count == 460 && rows.lastID == 460 && rows.outliers.isEmpty)
    }

    @Test func aLogWithAFarIdOpensSmallAndGoesOn() throws {
        let path = tempLogPath()
        do {
            let store = try Store(path: path)
            try store.transaction { tx in
                _ = tx.insert(Message(forum: "f", text: "first"), into: try store.table(Message.self))
            }
            store.close()
        }
        // A put at id 9,999,999 written by hand (the fuzzer's shape), then reopen.
        var ops = [UInt8]([1, 1, 0, 0, 0, 1])
        ops += withUnsafeBytes(of: UInt16(Message.typeName.utf8.count).littleEndian, Array.init) + Array(Message.typeName.utf8)
        ops += withUnsafeBytes(of: UInt64(9_999_999).littleEndian, Array.init)
        var fields = RecordWriter()
        Message(forum: "f", text: "far").encode(to: &fields)
        let record = fields.bytes
        ops += withUnsafeBytes(of: UInt32(record.count).littleEndian, Array.init) + record
        var file = fileBytes(path)
        let end = try Store(path: path).logLength
        let entry =
            withUnsafeBytes(of: UInt32(ops.count).littleEndian, Array.init) + withUnsafeBytes(of: crc32cOf(ops).littleEndian, Array.init)
            + ops
        file.replaceSubrange(end..<(end + entry.count), with: entry)
        writeFile(path, file)
        let store = try Store(path: path)
        let t = try store.table(Message.self)
        #expect(t.count == 2 && t.get(9_999_999)?.text == "far")
        #expect(try t.insert(Message(forum: "f", text: "next")) == 10_000_000)
        store.close()
    }
}

@Suite("Group commit")
struct GroupSyncTests {
    /// Runs `body` on `n` threads; returns how many returned within `seconds` (the rest are
    /// left blocked: a hang shows as a count short of `n`, not as a test that never ends).
    func finished(_ n: Int, within seconds: Double, _ body: @escaping @Sendable (Int) -> Void) -> Int {
        let done = Atomic<Int>(0)
        for i in 0..<n {
            _ = try? POSIXThread.spawn(name: "test") {
                body(i)
                done.add(1, ordering: .relaxed)
            }
        }
        var waited = 0.0
        while done.load(ordering: .relaxed) < n && waited < seconds {
            usleep(10_000)
            waited += 0.01
        }
        return done.load(ordering: .relaxed)
    }

    @Test func aFailedSyncIsFinalAndWakesEveryWaiter() throws {
        let sync = GroupSync()
        let calls = Atomic<Int>(0)
        try sync.start(write: { _, _ in }) { () throws(StoreError) in
            calls.add(1, ordering: .relaxed)
            usleep(20_000)
            throw .io("fdatasync: Input/output error")
        }
        let errors = Atomic<Int>(0)
        // Eight writers appending while the (failing) syncs run: some wait for the running
        // sync, some for the next one, which never runs.
        let n = finished(8, within: 5) { i in
            let commit = sync.appendedOne()
            do throws(StoreError) { try sync.waitUntilDurable(commit) } catch { errors.add(1, ordering: .relaxed) }
        }
        #expect(n == 8)
        #expect(errors.load(ordering: .relaxed) == 8)
        // Final: a later write fails too, without another sync being tried.
        let before = calls.load(ordering: .relaxed)
        let later = sync.appendedOne()
        #expect(throws: StoreError.self) { try sync.waitUntilDurable(later) }
        #expect(calls.load(ordering: .relaxed) == before)
        sync.stop()
    }

    @Test func writersWaitingWhilePausedReturnOnceAllDurable() throws {
        let sync = GroupSync()
        let syncs = Atomic<Int>(0)
        try sync.start(write: { _, _ in }) { () throws(StoreError) in syncs.add(1, ordering: .relaxed) }
        try sync.pause()  // compaction: no sync may run until the file is swapped
        let returned = Atomic<Int>(0)
        #expect(
            finished(4, within: 0.3) { i in
                try? sync.waitUntilDurable(sync.appendedOne())
                returned.add(1, ordering: .relaxed)
            } == 0)
        #expect(syncs.load(ordering: .relaxed) == 0)
        // The new file holds those four commits, synced: the waiters return without a sync.
        sync.allDurable()
        var waited = 0
        while returned.load(ordering: .relaxed) < 4 && waited < 500 { usleep(10_000); waited += 1 }
        #expect(returned.load(ordering: .relaxed) == 4)
        // And syncs run again for later writes.
        let fifth = sync.appendedOne()
        #expect(finished(1, within: 5) { _ in try? sync.waitUntilDurable(fifth) } == 1)
        #expect(syncs.load(ordering: .relaxed) == 1)
        sync.stop()
    }

    /// Entries handed to the sync thread: written at their offsets, in order, before the sync
    /// that makes them durable; several per write when writers overlap.
    @Test func handedOverEntriesAreWrittenBeforeTheirSync() throws {
        let sync = GroupSync()
        let file = Mutex<[UInt8]>([])
        let writes = Atomic<Int>(0)
        let syncedEnd = Atomic<Int>(0)
        try sync.start(write: { bytes, at in
            file.withLock { f in
                #expect(at == f.count)  // contiguous, in claim order
                f += bytes
            }
            writes.add(1, ordering: .relaxed)
        }) { () throws(StoreError) in
            usleep(200)
            syncedEnd.store(file.withLock { $0.count }, ordering: .releasing)
        }
        let claim = Mutex<Int>(0)  // the store's lock: space is claimed and handed over in order
        let late = Atomic<Int>(0)
        let n = finished(8, within: 10) { t in
            for k in 0..<50 {
                let entry = [UInt8](repeating: UInt8(truncatingIfNeeded: t * 50 + k), count: 1 + k % 7)
                let (number, end) = claim.withLock { next in
                    let at = next
                    next += entry.count
                    return (sync.appended(entry, at: at), next)
                }
                do throws(StoreError) { try sync.waitUntilDurable(number) } catch { late.add(1000, ordering: .relaxed) }
                if syncedEnd.load(ordering: .acquiring) < end { late.add(1, ordering: .relaxed) }
            }
        }
        #expect(n == 8)
        #expect(late.load(ordering: .relaxed) == 0)
        #expect(file.withLock { $0.count } == claim.withLock { $0 })
        #expect(writes.load(ordering: .relaxed) < 400)
        sync.stop()
    }

    /// Compaction's pause waits for the running sync, then writes what was handed over since.
    @Test func pauseWritesWhatWasHandedOver() throws {
        let sync = GroupSync()
        let writes = Mutex<[(Int, [UInt8])]>([])
        let syncs = Atomic<Int>(0)
        try sync.start(write: { bytes, at in writes.withLock { $0.append((at, bytes)) } }) { () throws(StoreError) in
            usleep(50_000)
            syncs.add(1, ordering: .relaxed)
        }
        let first = sync.appended([1, 2, 3], at: 16)
        let waiter = try POSIXThread.spawn(name: "test") { try? sync.waitUntilDurable(first) }  // wakes the sync thread
        usleep(10_000)  // the sync thread has taken [1, 2, 3] and is syncing
        let second = sync.appended([4, 5], at: 19)
        try sync.pause()
        #expect(syncs.load(ordering: .relaxed) == 1)
        #expect(writes.withLock { $0.map(\.0) } == [16, 19])
        #expect(writes.withLock { $0.map(\.1) } == [[1, 2, 3], [4, 5]])
        sync.allDurable()
        try sync.waitUntilDurable(first)
        try sync.waitUntilDurable(second)
        #expect(syncs.load(ordering: .relaxed) == 1)
        pthread_join(waiter, nil)
        sync.stop()
    }
}
