// gzip-bench: the cost of gzipping one board-shaped answer per request, in one run: the
// per-loop encoder splicing the shared fragment and storing short runs (what the server does),
// the same with short runs deflated, and every byte deflated at levels 1 and 6 (what nginx's
// `gzip on` does at its default level 1).
// Usage: gzip-bench [--quick] [--page FILE] (FILE: a saved board page; default: a synthetic one
// shaped like it: 750 bytes of head, a 27 KB message list, 180 bytes of tail).
import Glibc
import Needletail
import NeedletailBytes

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

let args = CommandLine.arguments
let quick = args.contains("--quick")
let seconds = quick ? 0.2 : 1.0

let head: [UInt8] = {
    var h = Array("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Needletail message board</title>".utf8)
    while h.count < 750 { h += Array("<meta name=\"x\" content=\"\(h.count)\">".utf8) }
    return h
}()
let list: [UInt8] = (0..<100).flatMap { i in
    Array(
        "<li id=\"m\(1000 + i)\" class=\"message\"><span class=\"author\">user\(i % 7) &lt;TLUG&gt;</span> <time datetime=\"2026-11-27T05:\(10 + i % 50):00Z\">05:\(10 + i % 50)</time><p>Message \(i): &lt;TLUG&gt; &amp; 'quoted' &quot;text&quot; about apt-get, portage &amp; dpkg -- see &lt;http://example.org/\(i)&gt;</p></li>"
            .utf8)
}
let tail = Array("</ol></main><script src=\"/_nt/runtime.js?v=0123456789abcdef\" defer></script></body></html>\n".utf8)
let shared = list.withUnsafeBytes { SharedBytes(copying: $0) }

func chain() -> Chunks {
    var c = Chunks()
    head.withUnsafeBytes { c.append(copying: $0) }
    c.append(shared: shared)
    tail.withUnsafeBytes { c.append(copying: $0) }
    return c
}

func measure(_ name: String, _ body: () -> Int) {
    var n = 0, bytes = 0
    let start = now()
    while now() - start < seconds {
        for _ in 0..<100 { bytes = body() }
        n += 100
    }
    let perCall = (now() - start) / Double(n) * 1e6
    print("| \(name) | \(Double(Int(perCall * 100)) / 100) µs | \(bytes) |")
}

func whole(level: Int32) -> GzipEncoder? {
    var s = GzipEncoder.Settings()
    (s.spliceMinimum, s.storeBelow, s.level) = (.max, 0, level)
    return GzipEncoder(settings: s)
}
guard let spliced = GzipEncoder(), let whole1 = whole(level: 1), let whole6 = whole(level: 6)
else {
    print("gzip-bench: zlib could not allocate a stream")
    exit(1)
}
let page = chain()
if let i = args.firstIndex(of: "--profile"), i + 1 < args.count, let n = Int(args[i + 1]) {
    // For callgrind: the server's encoder only, n answers.
    for _ in 0..<n { var c = spliced.encode(page); c.recycle() }
    exit(0)
}
print("board-shaped answer: \(page.count) bytes (\(head.count + tail.count) per request, \(shared.count) shared)\n")
print("| gzip of one answer | time per answer | bytes out |")
print("|---|---|---|")
measure("spliced (the server's encoder, level 1)") { var c = spliced.encode(page); defer { c.recycle() }; return c.count }
measure("every byte deflated, level 1") { var c = whole1.encode(page); defer { c.recycle() }; return c.count }
measure("every byte deflated, level 6") { var c = whole6.encode(page); defer { c.recycle() }; return c.count }
do {
    var s = GzipEncoder.Settings()
    s.storeBelow = 0
    if let e = GzipEncoder(settings: s) {
        measure("spliced, short runs deflated too (storeBelow 0)") { var c = e.encode(page); defer { c.recycle() }; return c.count }
    }
}
// Checked, not only timed: each form decompresses to the page.
for e in [spliced, whole1, whole6] where Gzip.decompress(e.encode(page).bytes) != page.bytes {
    print("gzip-bench: an encoded answer does not decompress to the page")
    exit(1)
}
