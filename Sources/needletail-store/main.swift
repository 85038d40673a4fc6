import ArgumentParser
import Foundation
import CNeedletailLinux
import Glibc
import NeedletailPOSIX
import NeedletailStore
import NeedletailStoreTestSupport

/// Inspects and maintains a Needletail store log (like redis-check-aof), and drives the crash
/// tests.
struct StoreTool: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "needletail-store",
        abstract: "Check, repair or compact a Needletail store log.",
        subcommands: [Check.self, Repair.self, Compact.self, Torture.self, Fill.self])
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Replay the log and report what it holds (cuts a torn tail).")
    @Argument(help: "The log file.") var path: String
    func run() throws {
        do {
            let store = try Store(path: path, fsync: .never)
            print("\(path): \(store.recovery), \(store.logLength) bytes")
            store.close()
        } catch {
            print("\(path): \(error)")
            throw ExitCode(1)
        }
    }
}

struct Repair: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Keep the entries before the first damaged one, cut the rest.")
    @Argument(help: "The log file.") var path: String
    func run() throws {
        let store = try Store(path: path, fsync: .never, repair: true)
        print("\(path): \(store.recovery)")
        store.close()
    }
}

struct Compact: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Rewrite the log as its live records.")
    @Argument(help: "The log file.") var path: String
    func run() throws {
        let store = try Store(path: path, fsync: .always)
        let saved = try store.compact()
        print("\(path): \(store.recovery); compacted, \(saved) bytes saved, \(store.logLength) bytes now")
        store.close()
    }
}

struct Torture: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Insert records with fsync always, printing `ack N` after each commit returns, until killed.",
        shouldDisplay: false)
    @Argument(help: "The log file.") var path: String
    @Option(help: "Writer threads.") var threads: Int = 4

    func run() throws {
        // Killed with its parent: a test that crashed must not leave it writing for ever.
        _ = nt_die_with_parent()
        let store = try Store(path: path, fsync: .always)
        let table = try store.table(SampleRecord.self)
        let start = table.all().map(\.record.key).max() ?? 0
        let step = threads
        for t in 0..<threads {
            try POSIXThread.spawn(name: "torture writer", detached: true) {
                var seq = start + 1 + t
                while true {
                    do {
                        try table.insert(SampleRecord(key: seq, text: String(repeating: "x", count: seq % 200)))
                    } catch {
                        let line = "torture: \(error)\n"
                        _ = line.withCString { write(2, $0, strlen($0)) }
                        Glibc.exit(1)
                    }
                    let line = "ack \(seq)\n"
                    _ = line.withCString { write(1, $0, strlen($0)) }
                    seq += step
                }
            }
        }
        while true { sleep(60) }
    }
}

struct Fill: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Append N small records (1,000 per transaction) and time reopening the log: the load benchmark.",
        shouldDisplay: false)
    @Argument(help: "The log file.") var path: String
    @Option(help: "Records to add.") var count: Int = 1_000_000

    func run() throws {
        let store = try Store(path: path, fsync: .never)
        let table = try store.table(SampleRecord.self)
        var seq = 0
        while seq < count {
            try store.transaction { tx in
                for _ in 0..<min(1000, count - seq) {
                    seq += 1
                    tx.insert(SampleRecord(key: seq, text: "record \(seq)"), into: table)
                }
            }
        }
        store.close()
        var t0 = timespec(), t1 = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t0)
        let again = try Store(path: path, fsync: .never)
        let n = try again.table(SampleRecord.self).count
        clock_gettime(CLOCK_MONOTONIC, &t1)
        let seconds = Double(t1.tv_sec - t0.tv_sec) + Double(t1.tv_nsec - t0.tv_nsec) / 1e9
        print("loaded \(n) records (\(again.logLength) bytes) in \(String(format: "%.3f", seconds)) s")
        // Indexed lookups: the table again with an index on seq, then `count` lookups.
        again.close()
        let indexed = try Store(path: path, fsync: .never)
        let t = try indexed.table(SampleRecord.self, indexes: [Index(\SampleRecord.key)])
        var found = 0
        clock_gettime(CLOCK_MONOTONIC, &t0)
        for k in 1...n { found += t.lookup(\SampleRecord.key, k).count }
        clock_gettime(CLOCK_MONOTONIC, &t1)
        let lookupSeconds = Double(t1.tv_sec - t0.tv_sec) + Double(t1.tv_nsec - t0.tv_nsec) / 1e9
        print(
            "\(found) indexed lookups in \(String(format: "%.3f", lookupSeconds)) s: \(String(format: "%.0f", lookupSeconds / Double(n) * 1e9)) ns each"
        )
        indexed.close()
    }
}

StoreTool.main()
