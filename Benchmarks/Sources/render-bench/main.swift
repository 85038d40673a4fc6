// render-bench: renders per second and allocations per render of the message-board page (100
// messages) and a Fortunes-shaped page, in Needletail's HTML DSL, Plot 0.14 and swift-mustache
// 2.1, in one run. Usage: render-bench [--quick] [--rounds N] [--output FILE.md]
import CMallocCount
import Glibc
import Needletail

struct Engine {
    let name: String
    /// Renders once and returns the number of bytes produced.
    let render: () -> Int
    /// The rendered page, to check escaping before measuring.
    let sample: () -> String
}

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func needletail<Page: HTMLContent>(_ page: @escaping () -> Page) -> (() -> Int, () -> String) {
    let render = {
        var chunks = page().render()
        let n = chunks.count
        chunks.recycle()  // as the server does once the response is written
        return n
    }
    return (render, { page().renderedString() })
}

let args = CommandLine.arguments
let quick = args.contains("--quick")
let rounds = args.firstIndex(of: "--rounds").flatMap { Int(args[$0 + 1]) } ?? (quick ? 1 : 5)
let roundSeconds = quick ? 0.1 : 0.5
let output = args.firstIndex(of: "--output").map { args[$0 + 1] }

let messages = BenchData.messages
let fortunes = BenchData.fortunes
let (ntBoard, ntBoardSample) = needletail { NeedletailPages.board(forum: BenchData.forum, messages: messages, version: 42) }
let (ntFortunes, ntFortunesSample) = needletail { NeedletailPages.fortunes(fortunes) }

let workloads: [(String, [Engine])] = [
    (
        "message board (100 messages)",
        [
            Engine(name: "Needletail", render: ntBoard, sample: ntBoardSample),
            Engine(
                name: "swift-mustache 2.1.1",
                render: { MustachePages.board(forum: BenchData.forum, messages: messages, version: 42).utf8.count },
                sample: { MustachePages.board(forum: BenchData.forum, messages: messages, version: 42) }),
            Engine(
                name: "Plot 0.14.0", render: { PlotPages.board(forum: BenchData.forum, messages: messages, version: 42).utf8.count },
                sample: { PlotPages.board(forum: BenchData.forum, messages: messages, version: 42) }),
        ]
    ),
    (
        "fortunes (13 rows)",
        [
            Engine(name: "Needletail", render: ntFortunes, sample: ntFortunesSample),
            Engine(
                name: "swift-mustache 2.1.1", render: { MustachePages.fortunes(fortunes).utf8.count },
                sample: { MustachePages.fortunes(fortunes) }),
            Engine(name: "Plot 0.14.0", render: { PlotPages.fortunes(fortunes).utf8.count }, sample: { PlotPages.fortunes(fortunes) }),
        ]
    ),
]

// --profile W E N: render workload W with engine E N times and exit (for callgrind).
if let i = args.firstIndex(of: "--profile"), let w = Int(args[i + 1]), let e = Int(args[i + 2]), let n = Int(args[i + 3]) {
    var sink = 0
    for _ in 0..<n { sink &+= workloads[w].1[e].render() }
    print(sink)
    exit(0)
}

// Every engine must escape what needs escaping before its speed means anything.
var failed = false
for (workload, engines) in workloads {
    for e in engines {
        let page = e.sample()
        let mustHave =
            workload.hasPrefix("fortunes")
            ? ["&lt;script&gt;alert(", "フレームワークのベンチマーク", "<td>11</td>"]
            : ["&lt;b&gt;not bold&lt;/b&gt;", "user3 &lt;TLUG&gt; &amp;", "id=\"m1099\""]
        let mustNot = workload.hasPrefix("fortunes") ? ["<script>alert("] : ["<b>not bold", "<TLUG>"]
        for s in mustHave where !page.contains(s) { print("\(e.name) \(workload): missing \(s)"); failed = true }
        for s in mustNot where page.contains(s) { print("\(e.name) \(workload): unescaped \(s)"); failed = true }
    }
}
if failed { exit(1) }

func fmt1(_ x: Double) -> String {
    let tenths = Int((x * 10).rounded())
    return "\(tenths / 10).\(tenths % 10)"
}

struct Result {
    let workload: String
    let engine: String
    let rendersPerSecond: Double
    let allocations: Double
    let bytes: Int
}

var results: [Result] = []
for (workload, engines) in workloads {
    for e in engines {
        // warm-up, then allocations per render over a fixed count
        var sink = 0
        for _ in 0..<200 { sink &+= e.render() }
        let n = 1000
        let a0 = malloc_count_allocations()
        for _ in 0..<n { sink &+= e.render() }
        let allocs = Double(malloc_count_allocations() - a0) / Double(n)
        var rates: [Double] = []
        for _ in 0..<rounds {
            var count = 0
            let start = now()
            var elapsed = 0.0
            repeat {
                for _ in 0..<16 { sink &+= e.render() }
                count += 16
                elapsed = now() - start
            } while elapsed < roundSeconds
            rates.append(Double(count) / elapsed)
        }
        rates.sort()
        let median = rates[rates.count / 2]
        let bytes = e.render()
        results.append(Result(workload: workload, engine: e.name, rendersPerSecond: median, allocations: allocs, bytes: bytes))
        if sink == 42 { print("") }  // keeps the work observable
        print("\(workload) · \(e.name): \(Int(median)) renders/s, \(allocs) allocations/render, \(bytes) bytes")
    }
}

var md =
    "| page | engine | renders/s (median of \(rounds)) | Needletail is | allocations per render | bytes |\n|---|---|---:|---:|---:|---:|\n"
for r in results {
    let ours = results.first { $0.workload == r.workload && $0.engine == "Needletail" }!.rendersPerSecond
    let ratio = r.engine == "Needletail" ? "—" : fmt1(ours / r.rendersPerSecond) + "× faster"
    md += "| \(r.workload) | \(r.engine) | \(Int(r.rendersPerSecond)) | \(ratio) | \(fmt1(r.allocations)) | \(r.bytes) |\n"
}
print("\n" + md)
if let output {
    let f = fopen(output, "w")
    fputs(md, f)
    fclose(f)
}
