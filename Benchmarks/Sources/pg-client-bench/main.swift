// The client side of Benchmarks/postgres-bench: `--concurrency` tasks on one event loop, each
// running `SELECT $1::int8 * 2` in a loop through NeedletailPostgres (at most `--connections`
// connections, queries pipelined on them), for `--seconds` after a warm-up. Prints one line:
// queries per second and the process's CPU time per query (user + system, µs), which is the
// client's own cost: libpq, the loop and the tasks.
import Glibc
import NeedletailLoop
import NeedletailPOSIX
import NeedletailPostgres
import Synchronization

func option(_ name: String, _ fallback: String) -> String {
    let args = CommandLine.arguments
    guard let i = args.firstIndex(of: name), i + 1 < args.count else { return fallback }
    return args[i + 1]
}

func complain(_ message: String) {
    let line = Array("pg-client-bench: \(message)\n".utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

func cpuSeconds() -> Double {
    var u = rusage()
    getrusage(Int32(RUSAGE_SELF.rawValue), &u)
    return Double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + Double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6
}

let url = option("--url", "")
let seconds = Double(option("--seconds", "5")) ?? 5
let concurrency = Int(option("--concurrency", "1")) ?? 1
var configuration = PostgresConfiguration(url)
configuration.connectionsPerLoop = Int(option("--connections", "1")) ?? 1

let count = Atomic<Int>(0)
let failures = Atomic<Int>(0)
let stop = Atomic<Bool>(false)
do {
    let db = try PostgresClient(configuration)
    let group = try LoopGroup(count: 1)
    try group.start { loop in
        // startTask runs on the loop's thread once it runs.
        loop.execute { for i in 0..<concurrency {
            loop.startTask {
                while !stop.load(ordering: .relaxed) {
                    do {
                        let rows = try await db.query("SELECT $1::int8 * 2", [i])
                        if rows.count == 1 { count.add(1, ordering: .relaxed) }
                    } catch {
                        if failures.add(1, ordering: .relaxed).newValue == 1 { complain("\(error)") }
                        try? await Waiting.sleep(milliseconds: 10)
                    }
                }
            }
        } }
    }
    usleep(1_000_000)  // warm-up: connections made, statements prepared
    let (n0, c0) = (count.load(ordering: .relaxed), cpuSeconds())
    usleep(UInt32(seconds * 1_000_000))
    let (n1, c1) = (count.load(ordering: .relaxed), cpuSeconds())
    stop.store(true, ordering: .relaxed)
    let queries = n1 - n0
    let qps = Double(queries) / seconds
    let cpu = queries > 0 ? (c1 - c0) * 1e6 / Double(queries) : 0
    print("queries=\(queries) qps=\(Int(qps)) cpu_us_per_query=\(Double(Int(cpu * 100)) / 100) failures=\(failures.load(ordering: .relaxed))")
    usleep(200_000)
    db.close()
    group.shutdown(grace: 0)
    exit(0)
} catch {
    complain("\(error)")
    exit(1)
}
