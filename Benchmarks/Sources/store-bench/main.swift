// NeedletailStore against SQLite (WAL; synchronous=FULL and NORMAL), same inserts and lookups,
// same run. Usage: swift run -c release --package-path Benchmarks store-bench [--quick]
// (ROUNDS=N: rounds of the durable comparison, 5 by default, --durable: only that comparison;
// LOOKUPS=N: records for lookups).
import CSQLite
import Glibc
import Needletail
import NeedletailStoreTestSupport
import Synchronization

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func tempDir() -> String {
    var template = Array("/tmp/needletail-store-bench-XXXXXX".utf8CString)
    return template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
}

func residentBytes() -> Int {
    guard let f = fopen("/proc/self/statm", "r") else { return 0 }
    defer { fclose(f) }
    var size = 0, rss = 0
    _ = withUnsafeMutablePointer(to: &size) { s in
        withUnsafeMutablePointer(to: &rss) { r in withVaList([s, r]) { vfscanf(f, "%ld %ld", $0) } }
    }
    return rss * Int(sysconf(Int32(_SC_PAGESIZE)))
}

/// One indexed lookup, kept out of line so that callgrind can count its instructions.
@inline(never)
func lookupCount(_ table: RecordTable<SampleRecord>, _ key: Int) -> Int {
    table.lookup(\SampleRecord.key, key).count
}

/// One unique-key lookup (no result array), out of line for the same reason.
@inline(never)
func uniqueCount(_ table: RecordTable<SampleRecord>, _ key: Int) -> Int {
    (try? table.unique(\SampleRecord.key, key)) != nil ? 1 : 0
}

/// The same two through an index handle resolved once (`table.index(_:)`), as SQLite's side
/// uses a prepared statement.
@inline(never)
func preparedLookupCount(_ table: RecordTable<SampleRecord>, _ index: IndexHandle<SampleRecord, Int>, _ key: Int) -> Int {
    table.lookup(index, key).count
}

@inline(never)
func preparedUniqueCount(_ table: RecordTable<SampleRecord>, _ index: IndexHandle<SampleRecord, Int>, _ key: Int) -> Int {
    (try? table.unique(index, key)) != nil ? 1 : 0
}

/// Runs `body(thread)` on `threads` threads and returns the wall time.
func parallel(_ threads: Int, _ body: @escaping @Sendable (Int) -> Void) -> Double {
    let start = now()
    var tids: [pthread_t] = []
    for t in 0..<threads {
        tids.append(try! POSIXThread.spawn(name: "bench \(t)") { body(t) })
    }
    for t in tids { pthread_join(t, nil) }
    return now() - start
}

let quick = CommandLine.arguments.contains("--quick")
// --profile-lookups: only the Needletail lookups, for callgrind (instructions per lookup).
let profileLookups = CommandLine.arguments.contains("--profile-lookups")
let writers = 16
let perWriterDurable = quick ? 50 : 500
let perWriterFast = quick ? 500 : 5_000
let lookups = quick ? 20_000 : (getenv("LOOKUPS").map { Int(atoi($0)) } ?? 200_000)

var rows: [(String, String)] = []

// MARK: Inserts: Needletail per policy, SQLite WAL FULL and NORMAL

func needletailInserts(_ policy: FsyncPolicy, per: Int) throws -> Double {
    let dir = tempDir()
    let store = try Store(path: dir + "/bench.log", fsync: policy)
    let table = try store.table(SampleRecord.self, indexes: [Index(\SampleRecord.key)])
    let seconds = parallel(writers) { t in
        for i in 0..<per { _ = try? table.insert(SampleRecord(key: t * per + i, text: "row \(i) of writer \(t)")) }
    }
    store.close()
    return Double(writers * per) / seconds
}

func sqliteInserts(synchronous: String, per: Int) -> Double {
    let dir = tempDir()
    let path = dir + "/bench.db"
    var setup: OpaquePointer?
    sqlite3_open(path, &setup)
    sqlite3_exec(
        setup,
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=\(synchronous); CREATE TABLE row(id INTEGER PRIMARY KEY, key INTEGER, text TEXT); CREATE INDEX row_key ON row(key);",
        nil, nil, nil)
    sqlite3_close(setup)
    let seconds = parallel(writers) { t in
        var db: OpaquePointer?
        sqlite3_open(path, &db)
        sqlite3_busy_timeout(db, 60_000)
        sqlite3_exec(db, "PRAGMA synchronous=\(synchronous);", nil, nil, nil)
        var stmt: OpaquePointer?
        sqlite3_prepare_v2(db, "INSERT INTO row(key, text) VALUES (?, ?)", -1, &stmt, nil)
        for i in 0..<per {
            sqlite3_bind_int64(stmt, 1, Int64(t * per + i))
            let text = "row \(i) of writer \(t)"
            sqlite3_bind_text(stmt, 2, text, -1, unsafeBitCast(-1, to: sqlite3_destructor_type.self))
            while sqlite3_step(stmt) == SQLITE_BUSY { usleep(100) }
            sqlite3_reset(stmt)
        }
        sqlite3_finalize(stmt)
        sqlite3_close(db)
    }
    return Double(writers * per) / seconds
}

func oneDecimal(_ x: Double) -> String {
    let tenths = Int((x * 10).rounded())
    return "\(tenths / 10).\(tenths % 10)"
}

func median(_ xs: [Double]) -> Double {
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

if !profileLookups {
    // The durable comparison (the target): rounds alternating the two, so that both see the
    // same disk; the ratio is taken per round, and its median reported.
    let rounds = quick ? 1 : (getenv("ROUNDS").map { max(1, Int(atoi($0))) } ?? 5)
    var ours: [Double] = [], theirs: [Double] = [], ratios: [Double] = []
    for _ in 0..<rounds {
        ours.append(try needletailInserts(.always, per: perWriterDurable))
        theirs.append(sqliteInserts(synchronous: "FULL", per: perWriterDurable))
        ratios.append(ours.last! / theirs.last!)
    }
    let spread = rounds > 1 ? " (rounds \(oneDecimal(ratios.min()!))-\(oneDecimal(ratios.max()!))x)" : ""
    rows.append(("Needletail, fsync always, \(writers) writers", "\(Int(median(ours))) inserts/s"))
    rows.append(("SQLite WAL, synchronous=FULL, \(writers) writers", "\(Int(median(theirs))) inserts/s"))
    rows.append(("Ratio always / FULL, median of \(rounds) alternating rounds", oneDecimal(median(ratios)) + "x" + spread))
    if CommandLine.arguments.contains("--durable") {  // only this comparison
        print("| measure | result |\n|---|---:|")
        for (k, v) in rows { print("| \(k) | \(v) |") }
        exit(0)
    }
    rows.append(
        ("Needletail, fsync everySecond, \(writers) writers", "\(Int(try needletailInserts(.everySecond, per: perWriterFast))) inserts/s"))
    rows.append(("Needletail, fsync never, \(writers) writers", "\(Int(try needletailInserts(.never, per: perWriterFast))) inserts/s"))
    rows.append(
        ("SQLite WAL, synchronous=NORMAL, \(writers) writers", "\(Int(sqliteInserts(synchronous: "NORMAL", per: perWriterFast))) inserts/s")
    )
}

// MARK: Lookups

do {
    let dir = tempDir()
    let store = try Store(path: dir + "/lookup.log", fsync: .never)
    let table = try store.table(SampleRecord.self, indexes: [Index(\SampleRecord.key)])
    try store.transaction { tx in
        for k in 0..<lookups { tx.insert(SampleRecord(key: k, text: "row \(k)"), into: table) }
    }
    /// Runs `count(k)` for every key; returns how many were found and the ns per lookup.
    func timed(_ count: (Int) -> Int) -> (found: Int, ns: Int) {
        var found = 0
        let start = now()
        for k in 0..<lookups { found += count(k) }
        return (found, Int((now() - start) / Double(lookups) * 1e9))
    }
    let byKey = table.index(\SampleRecord.key)
    let plain = timed { lookupCount(table, $0) }
    let unique = timed { uniqueCount(table, $0) }
    let prepared = timed { preparedLookupCount(table, byKey, $0) }
    let preparedUnique = timed { preparedUniqueCount(table, byKey, $0) }
    rows.append(("Needletail indexed lookup (\(plain.found) found)", "\(plain.ns) ns"))
    rows.append(("Needletail unique indexed lookup (\(unique.found) found)", "\(unique.ns) ns"))
    rows.append(("Needletail indexed lookup, index handle (\(prepared.found) found)", "\(prepared.ns) ns"))
    rows.append(("Needletail unique indexed lookup, index handle (\(preparedUnique.found) found)", "\(preparedUnique.ns) ns"))
    store.close()
    if profileLookups {
        print("lookups: \(plain.ns) ns, unique: \(unique.ns) ns, with an index handle: \(prepared.ns) ns, unique \(preparedUnique.ns) ns")
        exit(0)
    }

    var db: OpaquePointer?
    sqlite3_open(dir + "/lookup.db", &db)
    sqlite3_exec(
        db,
        "PRAGMA journal_mode=WAL; CREATE TABLE row(id INTEGER PRIMARY KEY, key INTEGER, text TEXT); CREATE INDEX row_key ON row(key); BEGIN;",
        nil, nil, nil)
    var ins: OpaquePointer?
    sqlite3_prepare_v2(db, "INSERT INTO row(key, text) VALUES (?, ?)", -1, &ins, nil)
    for k in 0..<lookups {
        sqlite3_bind_int64(ins, 1, Int64(k))
        sqlite3_bind_text(ins, 2, "row \(k)", -1, unsafeBitCast(-1, to: sqlite3_destructor_type.self))
        sqlite3_step(ins)
        sqlite3_reset(ins)
    }
    sqlite3_finalize(ins)
    sqlite3_exec(db, "COMMIT;", nil, nil, nil)
    var sel: OpaquePointer?
    sqlite3_prepare_v2(db, "SELECT id, key, text FROM row WHERE key = ?", -1, &sel, nil)
    var sqlFound = 0
    let s2 = now()
    for k in 0..<lookups {
        sqlite3_bind_int64(sel, 1, Int64(k))
        while sqlite3_step(sel) == SQLITE_ROW {
            _ = String(cString: sqlite3_column_text(sel, 2))
            sqlFound += 1
        }
        sqlite3_reset(sel)
    }
    let sqlNs = (now() - s2) / Double(lookups) * 1e9
    sqlite3_finalize(sel)
    sqlite3_close(db)
    rows.append(("SQLite indexed lookup, prepared (\(sqlFound) found)", "\(Int(sqlNs)) ns"))
}

// MARK: Load and memory

do {
    let count = quick ? 100_000 : 1_000_000
    let dir = tempDir()
    let path = dir + "/load.log"
    do {
        let store = try Store(path: path, fsync: .never)
        let table = try store.table(SampleRecord.self)
        var k = 0
        while k < count {
            try store.transaction { tx in
                for _ in 0..<1000 where k < count {
                    tx.insert(SampleRecord(key: k, text: "row \(k)"), into: table)
                    k += 1
                }
            }
        }
        store.close()
    }
    let before = residentBytes()
    let start = now()
    let store = try Store(path: path, fsync: .never)
    let n = try store.table(SampleRecord.self).count
    let seconds = now() - start
    let perRecord = (residentBytes() - before) / max(n, 1)
    rows.append(("Needletail load of \(n) records", "\(Int(seconds * 1000)) ms"))
    rows.append(("Needletail memory per loaded record (RSS growth)", "\(perRecord) bytes"))
    store.close()
}

print("| measure | result |\n|---|---:|")
for (k, v) in rows { print("| \(k) | \(v) |") }
