import Glibc

/// A task executor that runs its jobs on a thread that waits for them: the blocking ways into
/// async code (CGI, the libfcgi responder, tests) start a task that prefers it and then call
/// `drain`, so the task runs on the calling thread. It needs no thread of Swift's cooperative
/// pool, which such a caller may itself be holding (a test run on a 2-core machine has two).
public final class ThreadExecutor: TaskExecutor, @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var condition = pthread_cond_t()
    private var jobs: [UnownedJob] = []
    private var finished = false

    public init() {
        pthread_mutex_init(&mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(&condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(&condition)
        pthread_mutex_destroy(&mutex)
    }

    public func enqueue(_ job: UnownedJob) {
        pthread_mutex_lock(&mutex)
        jobs.append(job)
        pthread_cond_signal(&condition)
        pthread_mutex_unlock(&mutex)
    }

    /// Marks the work done: `drain` returns once the job that called this has run.
    public func finish() {
        pthread_mutex_lock(&mutex)
        finished = true
        pthread_cond_signal(&condition)
        pthread_mutex_unlock(&mutex)
    }

    /// Runs the jobs enqueued here on this thread until `finish()` has been called (true) or
    /// `milliseconds` have passed (false; nil waits as long as it takes).
    public func drain(milliseconds: Int?) -> Bool {
        var end = timespec()
        clock_gettime(CLOCK_MONOTONIC, &end)
        if let milliseconds {
            let total = Int(end.tv_nsec) + (milliseconds % 1000) * 1_000_000
            end.tv_sec += milliseconds / 1000 + total / 1_000_000_000
            end.tv_nsec = total % 1_000_000_000
        }
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        while !finished {
            if !jobs.isEmpty {
                let batch = jobs
                jobs.removeAll(keepingCapacity: true)
                pthread_mutex_unlock(&mutex)
                for job in batch { job.runSynchronously(on: asUnownedTaskExecutor()) }
                pthread_mutex_lock(&mutex)
                continue
            }
            if milliseconds == nil {
                pthread_cond_wait(&condition, &mutex)
            } else if pthread_cond_timedwait(&condition, &mutex, &end) == ETIMEDOUT, jobs.isEmpty {
                return finished
            }
        }
        return true
    }

    /// Hands the rest of the work to a thread of its own, which drains until `finish()`: for a
    /// caller that stops waiting (a deadline) while the task still has to wind down. Drains
    /// here instead when no thread can be had.
    public func handOff() {
        do {
            _ = try POSIXThread.spawn(name: "task wind-down", detached: true) { [self] in _ = drain(milliseconds: nil) }
        } catch {
            _ = drain(milliseconds: nil)
        }
    }

    /// Runs `body` to its end on the calling thread (which it blocks meanwhile): for async work
    /// at a program's start, before any loop runs (connecting to a database, say).
    public static func run<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
        let executor = ThreadExecutor()
        let result = ResultSlot<T>()
        Task(executorPreference: executor) {
            do { result.value = .success(try await body()) } catch { result.value = .failure(error) }
            executor.finish()
        }
        _ = executor.drain(milliseconds: nil)
        return try result.value!.get()
    }
}

/// What `ThreadExecutor.run`'s task produced: written before `finish()`, read after `drain`
/// saw it (the executor's mutex orders them).
private final class ResultSlot<T>: @unchecked Sendable {
    var value: Result<T, any Error>?
}
