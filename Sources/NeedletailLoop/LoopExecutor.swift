import NeedletailBytes
import Glibc
import NeedletailPOSIX

/// A loop as a Swift concurrency executor: the jobs of the tasks isolated to the loop (a
/// request's task, see `EventLoop.startTask`) run on the loop's own thread, between its events.
///
/// A job enqueued from the loop's thread (a task resumed by a timer or by another task on the
/// loop) goes on a list only that thread touches, run before the loop next waits; from another
/// thread (a store's sync thread resuming a commit, a worker thread finishing blocking work)
/// it goes through the loop's locked queue and wakes the loop. No job allocates.
public final class LoopExecutor: SerialExecutor, @unchecked Sendable {
    /// `unowned(unsafe)`: the loop owns its executor and outlives every task isolated to it.
    unowned(unsafe) let loop: EventLoop

    init(loop: EventLoop) { self.loop = loop }

    public func enqueue(_ job: consuming ExecutorJob) {
        loop.enqueue(UnownedJob(job), on: .serial)
    }

    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    /// What lets `Task.immediate` start a loop-isolated task synchronously from plain loop code
    /// (which runs outside any job).
    public func isIsolatingCurrentContext() -> Bool? { loop.isCurrentThread }

    public func checkIsolated() {
        precondition(loop.isCurrentThread, "code isolated to event loop \(loop.index) ran on another thread")
    }
}

/// A loop as the task executor of its requests' tasks (their executor preference): every
/// nonisolated async function a handler calls, in any module, runs on the loop's thread.
/// A separate object from the loop's `LoopExecutor` (no type should be both: swift-platform-
/// executors PR #11).
public final class LoopTaskExecutor: TaskExecutor, @unchecked Sendable {
    unowned(unsafe) let loop: EventLoop

    init(loop: EventLoop) { self.loop = loop }

    public func enqueue(_ job: consuming ExecutorJob) {
        loop.enqueue(UnownedJob(job), on: .task)
    }
}

/// Which of a loop's two executors a job was enqueued on: it must run with that one (with the
/// other, the runtime enqueues it again).
enum LoopJobKind { case serial, task }

/// The isolation of a loop's tasks: an actor whose executor is the loop. Code isolated to it
/// runs on the loop's thread, and a task isolated to it resumes there after every suspension.
public actor LoopActor {
    /// The loop.
    public nonisolated let loop: EventLoop

    init(loop: EventLoop) { self.loop = loop }

    public nonisolated var unownedExecutor: UnownedSerialExecutor { loop.executor.asUnownedSerialExecutor() }
}

extension EventLoop {
    /// The loop whose thread this is, if any.
    public static var current: EventLoop? { LoopThread.current }

    /// Suspends the calling task for `milliseconds` on this loop's timers: no thread sleeps,
    /// the loop serves others meanwhile. Throws `CancellationError` when the task is cancelled
    /// (at once, not at the deadline). Call from a task on this loop.
    public func sleep(milliseconds: Int) async throws {
        let sleep = LoopSleep(loop: self)
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                sleep.start(continuation, milliseconds: milliseconds)
            }
        } onCancel: {
            sleep.cancel()
        }
    }

    /// `sleep(milliseconds:)` on the loop whose thread this is; off a loop, `Task.sleep`.
    public static func sleep(milliseconds: Int) async throws {
        if let loop = current {
            try await loop.sleep(milliseconds: milliseconds)
        } else {
            try await Task.sleep(nanoseconds: UInt64(max(0, milliseconds)) * 1_000_000)
        }
    }
}

/// One task's sleep on a loop's timers; its continuation is resumed once, by the timer or by
/// cancellation, whichever comes first.
final class LoopSleep: @unchecked Sendable {
    unowned(unsafe) let loop: EventLoop
    // Touched on the loop's thread only (the cancellation handler hops there).
    private var continuation: CheckedContinuation<Void, any Error>?
    private var timer: LoopTimerID?
    private var cancelled = false

    init(loop: EventLoop) { self.loop = loop }

    func start(_ c: CheckedContinuation<Void, any Error>, milliseconds: Int) {
        if cancelled {
            c.resume(throwing: CancellationError())
            return
        }
        continuation = c
        timer = loop.schedule(after: milliseconds) { [self] in
            timer = nil
            continuation.take()?.resume()
        }
    }

    func cancel() {
        let work: @Sendable () -> Void = { [self] in
            cancelled = true
            if let t = timer { loop.cancel(t) }
            timer = nil
            continuation.take()?.resume(throwing: CancellationError())
        }
        if loop.isCurrentThread { work() } else { loop.execute(work) }
    }
}

/// The event loop of the current thread (set while a loop runs).
enum LoopThread {
    static let key: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k, nil)
        return k
    }()

    static var current: EventLoop? {
        pthread_getspecific(key).map { Unmanaged<EventLoop>.fromOpaque($0).takeUnretainedValue() }
    }

    static func set(_ loop: EventLoop?) {
        pthread_setspecific(key, loop.map { Unmanaged.passUnretained($0).toOpaque() })
    }
}

/// Waiting without blocking a loop, for handlers and actions: a sleep on the loop's timers,
/// and blocking or CPU-heavy work run on a worker thread and awaited.
public enum Waiting {
    /// Suspends the calling task for `milliseconds`: on its loop's timers when it runs on a
    /// loop (no thread sleeps), else `Task.sleep`. Throws `CancellationError` at once when the
    /// task is cancelled (its client left).
    public static func sleep(milliseconds: Int) async throws {
        try await EventLoop.sleep(milliseconds: milliseconds)
    }

    /// Runs `work` on a worker thread (`BlockingPool.shared`) and returns its result to the
    /// calling task, which resumes on its loop: for a blocking call (a library without an
    /// asynchronous API, a DNS lookup, a big file) or heavy computation.
    public static func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            BlockingPool.shared.submit { continuation.resume(with: Result { try work() }) }
        }
    }
}
