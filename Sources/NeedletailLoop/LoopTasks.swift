/// A loop's request tasks, reused: creating a Swift task and tearing it down cost about half
/// of an async request that never suspends (callgrind: the task's allocation, its allocator's
/// slabs, the executor preference's status record under its lock), so a task that has run a
/// piece of work parks on the loop and runs the next one. docs/ASYNC.md has the figures.
///
/// Loop-confined: touched only on the loop's thread (the tasks' jobs run there too).
final class LoopTasks {
    /// Workers parked between pieces of work, most recently used last.
    @exclusivity(unchecked) var idle: [LoopWorker] = []
    /// How many may park; a worker finishing beyond that ends its task.
    let maxIdle = 64
}

/// One reusable task on a loop and the work it runs.
public final class LoopWorker: @unchecked Sendable {
    public typealias Work = @Sendable () async -> Void
    /// The work it is handed (a stored closure: passed through the continuation's generic
    /// value, it would cost a reabstraction thunk, allocated, each way).
    @exclusivity(unchecked) var work: Work?
    /// Where the parked task waits for its next work (false: end).
    @exclusivity(unchecked) var next: UnsafeContinuation<Bool, Never>?
    /// Counts the pieces of work finished: a `LoopTask` handle cancels only its own.
    @exclusivity(unchecked) var finished: UInt64 = 0
    /// Set when its current work was cancelled: a cancelled task stays cancelled, so it ends
    /// after that work instead of parking.
    @exclusivity(unchecked) var retiring = false
    @exclusivity(unchecked) var task: Task<Void, Never>?
}

/// A handle on a piece of work started by `EventLoop.startTask`: cancelling it cancels the
/// task while (and only while) it runs that work. Use on the loop's thread.
public struct LoopTask: @unchecked Sendable {
    let worker: LoopWorker
    let piece: UInt64

    /// Cancels the work if it is still running (as `Task.cancel`: it sees `Task.isCancelled`,
    /// and the waits that honour cancellation throw); no effect once it has finished.
    public func cancel() {
        guard worker.finished == piece, !worker.retiring else { return }
        worker.retiring = true
        worker.task?.cancel()
    }
}

extension EventLoop {
    /// Starts `operation` as a task on this loop (call on the loop's thread): with the loop as
    /// its executor preference, so that it and every nonisolated async function it calls run
    /// on the loop's thread and resume there after each suspension.
    ///
    /// It runs at once, inside this call, until it first suspends or ends (no thread hop, no
    /// wait for the loop's next turn), in a parked task of this loop's when there is one (see
    /// `LoopTasks`), else in a new one.
    @discardableResult
    public func startTask(_ operation: @escaping LoopWorker.Work) -> LoopTask {
        precondition(isCurrentThread, "EventLoop.startTask called off its loop's thread")
        let mark = markLocalJobs()
        let worker: LoopWorker
        if let parked = requestTasks.idle.popLast(), let next = parked.next.take() {
            worker = parked
            worker.work = operation
            next.resume(returning: true)
        } else {
            worker = LoopWorker()
            worker.work = operation
            worker.task = Task(executorPreference: taskExecutor!) { [self] in await runWorker(worker) }
        }
        let handle = LoopTask(worker: worker, piece: worker.finished)
        runJobEnqueued(since: mark)
        return handle
    }

    /// A worker's task: its first work, then whatever it is handed while parked.
    private func runWorker(_ worker: LoopWorker) async {
        while let work = worker.work.take() {
            await work()
            worker.finished &+= 1
            guard !worker.retiring, !Task.isCancelled, !isStopping, requestTasks.idle.count < requestTasks.maxIdle else { break }
            let more = await withUnsafeContinuation { (c: UnsafeContinuation<Bool, Never>) in
                worker.next = c
                requestTasks.idle.append(worker)
            }
            guard more else { break }
        }
        worker.task = nil
    }

    /// Ends the parked tasks (when the loop stops).
    func endParkedTasks() {
        let parked = requestTasks.idle
        requestTasks.idle.removeAll()
        for worker in parked { worker.next.take()?.resume(returning: false) }
        runLocalJobs()
    }
}
