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
        // The task starts at once, then enters the loop as its executor preference: one job on
        // the loop's own list, run before the loop waits again (docs/ASYNC.md).
        #expect(log.lines.withLock { $0 } == ["startTask returned", "started on loop true", "resumed on loop true"])
    }
}
