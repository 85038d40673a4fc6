import Glibc
import Synchronization
import Testing
@testable import NeedletailLoop

final class Log: Sendable {
    let lines = Mutex<[String]>([])
    func add(_ s: String) { lines.withLock { $0.append(s) } }
}

@Suite struct LoopTaskExecutorTests {
    @Test func aTaskStartsAtOnceAndResumesOnItsLoop() throws {
        let group = try LoopGroup(count: 1)
        try group.start { _ in }
        defer { group.shutdown(grace: 0); group.join() }
        let loop = group.loops[0]
        let log = Log()
        loop.execute {
            loop.startTask {
                log.add("started on loop \(loop.isCurrentThread)")
                try? await Waiting.sleep(milliseconds: 100)
                log.add("resumed on loop \(loop.isCurrentThread)")
            }
            log.add("startTask returned")
        }
        for _ in 0..<1000 where log.lines.withLock({ $0.count }) < 3 { usleep(10_000) }  // (a bound, not a timing)
        // The task runs inside startTask until it first suspends (docs/ASYNC.md).
        #expect(log.lines.withLock { $0 } == ["started on loop true", "startTask returned", "resumed on loop true"])
    }

    /// Runs `body` on the loop's thread and waits for `done` lines in the log.
    private func onLoop(_ loop: EventLoop, _ log: Log, until done: Int, _ body: @escaping @Sendable () -> Void) {
        loop.execute(body)
        for _ in 0..<1000 where log.lines.withLock({ $0.count }) < done { usleep(10_000) }  // (a bound, not a timing)
    }

    @Test func aFinishedTaskIsReusedAndACancelledOneIsNot() throws {
        let group = try LoopGroup(count: 1)
        try group.start { _ in }
        defer { group.shutdown(grace: 0); group.join() }
        let loop = group.loops[0]
        let log = Log()
        // Two pieces of work one after the other run in the same parked task.
        onLoop(loop, log, until: 2) {
            loop.startTask { log.add("first \(loop.requestTasks.idle.count)") }
            loop.startTask { log.add("second \(loop.requestTasks.idle.count)") }
        }
        #expect(log.lines.withLock { $0 } == ["first 0", "second 0"])
        #expect(loop.requestTasks.idle.count == 1)
        // A cancelled piece sees its cancellation, and its task ends instead of parking; a
        // handle whose work has finished cancels nothing (the next piece in that task runs on).
        onLoop(loop, log, until: 4) {
            let handle = loop.startTask {
                do {
                    try await Waiting.sleep(milliseconds: 10_000)
                    log.add("slept")
                } catch {
                    log.add("cancelled \(Task.isCancelled)")
                }
            }
            let stale = loop.startTask { log.add("quick") }  // a new task: the parked one is busy
            handle.cancel()
            stale.cancel()
        }
        onLoop(loop, log, until: 5) {
            loop.startTask { log.add("after \(Task.isCancelled)") }
        }
        #expect(log.lines.withLock { $0 } == ["first 0", "second 0", "quick", "cancelled true", "after false"])
        #expect(loop.requestTasks.idle.count == 1)
    }
}
