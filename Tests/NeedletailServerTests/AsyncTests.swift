import Foundation
import Glibc
import NeedletailTestSupport
import Synchronization
import Testing
@testable import NeedletailHTTP
@testable import NeedletailLoop
@testable import NeedletailServer
import NeedletailStore
import NeedletailStoreTestSupport

/// Async handlers over real sockets: the loop serves others while one waits, pipelined requests
/// stay in order, a client that leaves cancels its task, deadlines and the cap answer 503.
@Suite("Async handlers", .serialized)
struct AsyncTests {
    let app = TestApp.withAsync(TestApp.withStreaming(TestApp.router()))

    /// Sends a GET on a new connection (the answer is read later).
    func send(_ address: SocketAddress, _ target: String) throws -> TestClient {
        let c = try TestClient(address, timeout: 30)
        try c.send("GET \(target) HTTP/1.1\r\nHost: t\r\n\r\n")
        return c
    }

    @Test func aThousandWaitingRequestsLeaveTheLoopFreeForOthers() throws {
        try withServer(loops: 1, responder: app) { _, address in
            let waiting = try (0..<1000).map { _ in try send(address, "/async/wait?ms=500") }
            // The loop answers a hello while all 1,000 are suspended on its timers.
            let hello = try send(address, "/hello?name=meanwhile")
            #expect(try hello.readResponse().text == "<h1>Hello meanwhile</h1>")
            let unanswered = waiting.filter { c in
                var pending = pollfd(fd: c.fd, events: Int16(POLLIN), revents: 0)
                return poll(&pending, 1, 0) == 0
            }.count
            #expect(unanswered > 900, "the hello was answered before the waits ended (\(unanswered) of 1,000 still waiting)")
            for c in waiting {
                let text = try c.readResponse().text
                #expect(text == "waited 500 ms")
            }
        }
    }

    @Test func pipelinedRequestsBehindASuspendedOneAreAnsweredInOrder() throws {
        try withServer(loops: 1, responder: app) { _, address in
            let c = try TestClient(address, timeout: 10)
            try c.send("GET /async/wait?ms=100 HTTP/1.1\r\nHost: t\r\n\r\nGET /hello?name=second HTTP/1.1\r\nHost: t\r\n\r\n"
                       + "GET /async/now?x=third HTTP/1.1\r\nHost: t\r\n\r\nGET /hello?name=fourth HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try c.readResponse().text == "waited 100 ms")
            #expect(try c.readResponse().text == "<h1>Hello second</h1>")
            #expect(try c.readResponse().text == "now third")
            #expect(try c.readResponse().text == "<h1>Hello fourth</h1>")
        }
    }

    /// A connection reuses an answered request's head bytes for its next head: a request an
    /// async handler still holds keeps its own.
    @Test func aHeldRequestKeepsItsBytesWhileTheConnectionReadsOn() throws {
        try withServer(loops: 1, responder: app) { _, address in
            let c = try TestClient(address, timeout: 10)
            try c.send("GET /async/later?ms=50&x=first HTTP/1.1\r\nHost: t\r\nX-Tag: one\r\n\r\n"
                       + "GET /hello?name=second HTTP/1.1\r\nHost: t\r\nX-Tag: two\r\n\r\n"
                       + "GET /async/later?ms=1&x=third HTTP/1.1\r\nHost: t\r\nX-Tag: three\r\n\r\n"
                       + "GET /hello?name=fourth HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(try c.readResponse().text == "later first one")
            #expect(try c.readResponse().text == "<h1>Hello second</h1>")
            #expect(try c.readResponse().text == "later third three")
            #expect(try c.readResponse().text == "<h1>Hello fourth</h1>")
            // Heads longer and shorter than the one before, and one past the kept size.
            for (name, pad) in [("long", 3000), ("short", 0), ("huge", 6000), ("tiny", 0), ("mid", 500)] {
                try c.send("GET /hello?name=\(name) HTTP/1.1\r\nHost: t\r\nX-Pad: \(String(repeating: "p", count: pad))\r\n\r\n")
                #expect(try c.readResponse().text == "<h1>Hello \(name)</h1>")
            }
        }
    }

    @Test func aClientThatLeavesCancelsItsTask() throws {
        try withServer(loops: 1, responder: app) { _, address in
            let before = TestApp.cancelledTasks.load(ordering: .relaxed)
            do { _ = try send(address, "/async/hold") }  // closed at once
            var waited = 0
            while TestApp.cancelledTasks.load(ordering: .relaxed) == before && waited < 500 {
                usleep(10_000)
                waited += 1
            }
            #expect(TestApp.cancelledTasks.load(ordering: .relaxed) == before + 1, "the handler saw the cancellation")
            let after = try send(address, "/hello?name=after")
            #expect(try after.readResponse().text == "<h1>Hello after</h1>")
        }
    }

    @Test func theDeadlineAndTheCapAnswer503() throws {
        try withServer(loops: 1, responder: app, configure: { $0.maxSuspendedRequestsPerLoop = 5 }) { _, address in
            let slow = try send(address, "/async/slow").readResponse()
            #expect(slow.status == 503 && slow.header("retry-after") == "5", "the route's 200 ms deadline")
            var held = try (0..<5).map { _ in try send(address, "/async/hold") }
            usleep(100_000)  // (their tasks suspend; no timing is asserted)
            let over = try send(address, "/async/hold").readResponse()
            #expect(over.status == 503 && over.text.contains("Too many requests"), "the sixth is over the cap")
            held.removeLast()  // one client leaves: its task is cancelled, a place is free
            var answered: TestClient.Response?
            for _ in 0..<100 {
                answered = try send(address, "/async/now?x=1").readResponse()
                if answered?.status == 200 { break }
                usleep(20_000)
            }
            #expect(answered?.text == "now 1", "under the cap again")
        }
    }

    @Test func codeBeforeAndAfterEachAwaitRunsOnItsLoop() throws {
        try withServer(loops: 2, responder: app) { _, address in
            let before = TestApp.offLoop.load(ordering: .relaxed)
            for _ in 0..<20 {
                let text = try send(address, "/async/threads").readResponse().text
                #expect(text == "sum 500500")
            }
            #expect(TestApp.offLoop.load(ordering: .relaxed) == before, "every check found its loop's thread")
        }
    }

    @Test func errorsBecomeTheSameAnswersAsForSynchronousHandlers() throws {
        try withServer(loops: 1, responder: app) { _, address in
            let fail = try send(address, "/async/fail").readResponse()
            #expect(fail.status == 500 && !fail.text.contains("Broken"), "the details go to the log, not the client")
            let bad = try send(address, "/async/bad?n=x").readResponse()
            #expect(bad.status == 400 && bad.text.contains("The parameter n must be an integer"))
        }
    }

    /// 200 durable inserts in flight on one loop share fdatasyncs, each answered once synced,
    /// on its loop.
    @Test func durableInsertsInFlightShareTheirSyncs() throws {
        let dir = makeTempDir("needletail-async-store")
        let store = try Store(path: dir + "/log", fsync: .always)
        defer { store.close() }
        let table = try store.table(SampleRecord.self)
        let app = TestApp.withAsync(TestApp.router(), store: table)
        try withServer(loops: 1, responder: app) { _, address in
            let before = TestApp.offLoop.load(ordering: .relaxed)
            let syncsBefore = store.syncCount
            let clients = try (0..<200).map { k -> TestClient in
                let c = try TestClient(address, timeout: 30)
                try c.send("POST /async/insert?k=\(k) HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
                return c
            }
            for c in clients {
                let r = try c.readResponse()
                #expect(r.status == 200 && r.text.hasPrefix("stored "))
            }
            #expect(table.count == 200)
            let syncs = store.syncCount - syncsBefore
            #expect(syncs < 200, "200 commits, \(syncs) fdatasyncs")
            #expect(TestApp.offLoop.load(ordering: .relaxed) == before, "each resumed on its loop")
            print("async store: 200 durable inserts in flight on one loop took \(syncs) fdatasyncs")
        }
    }

    @Test func fastCGIAbortCancelsTheTaskAndOtherRequestsGoOn() throws {
        var config = ServerConfiguration()
        config.loops = 1
        let server = try Server(responder: app, listeners: [.fastCGI(.ipv4(host: "127.0.0.1", port: 0))], configuration: config)
        try server.start()
        defer {
            server.shutdown(grace: 1)
            server.wait()
        }
        let before = TestApp.cancelledTasks.load(ordering: .relaxed)
        let c = try FCGIClient(server.addresses[0])
        try c.send(FCGIClient.request(id: 1, [("REQUEST_METHOD", "GET"), ("REQUEST_URI", "/async/hold")], keep: true))
        try c.send(FCGIClient.request(id: 2, [("REQUEST_METHOD", "GET"), ("REQUEST_URI", "/async/wait?ms=50")], keep: true))
        #expect(try c.readAnswers([2])[2]?.body == "waited 50 ms", "request 2 is answered while 1 waits")
        try c.send(FCGIClient.record(2, id: 1, []))  // ABORT_REQUEST
        var waited = 0
        while TestApp.cancelledTasks.load(ordering: .relaxed) == before && waited < 500 {
            usleep(10_000)
            waited += 1
        }
        #expect(TestApp.cancelledTasks.load(ordering: .relaxed) == before + 1, "ABORT_REQUEST cancelled the task")
    }
}

/// The blocking ways in (CGI, libfcgi, TestBrowser) run an async handler on the waiting thread
/// itself, so they answer even when every thread of Swift's cooperative pool is blocked.
@Suite struct WaitedResponseTests {
    @Test func aWaitedResponseNeedsNoThreadOfTheCooperativePool() async throws {
        let release = Flag()
        let cores = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        let blockers = (0..<max(2, cores) * 2).map { _ in
            Task.detached { while !release.isSet { usleep(1000) } }
        }
        defer { release.set() }
        let reply = PendingReply(request: Request(method: .get, path: "/x"), deadline: 5000) { _ in
            try await Waiting.sleep(milliseconds: 1)
            return .text("done after a wait")
        }
        let started = ContinuousClock.now
        let answer = Response(status: .ok, body: .pending(reply)).waited()
        #expect(answer.response.body.string == "done after a wait")
        #expect(ContinuousClock.now - started < .seconds(4), "not held up until the deadline")
        release.set()
        for b in blockers { await b.value }
    }

    @Test func aHandlerPastItsDeadlineGets503AndIsCancelled() throws {
        let cancelled = Flag()
        let reply = PendingReply(request: Request(method: .get, path: "/x"), deadline: 50) { _ in
            do { try await Waiting.sleep(milliseconds: 10_000) } catch { cancelled.set() }
            return .text("late")
        }
        let answer = Response(status: .ok, body: .pending(reply)).waited()
        #expect(answer.response.status == .serviceUnavailable)
        var waited = 0
        while !cancelled.isSet && waited < 5000 { usleep(1000); waited += 1 }
        let wasCancelled = cancelled.isSet
        #expect(wasCancelled, "the task was cancelled and wound down on a thread of its own")
    }
}

/// A flag set once, read from any thread.
final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    var isSet: Bool { value.load(ordering: .acquiring) }
    func set() { value.store(true, ordering: .releasing) }
}
