import Glibc

/// Worker threads for blocking or CPU-heavy work that a loop must not run (a library without
/// an asynchronous API, a big computation): `Waiting.run` hands work here and the task
/// awaiting it resumes on its loop. Threads start on first use, up to `limit`.
public final class BlockingPool: @unchecked Sendable {
    /// The process's pool: as many threads as CPUs, at least 2.
    public static let shared = BlockingPool(limit: max(2, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))))

    public let limit: Int
    private var mutex = pthread_mutex_t()
    private var condition = pthread_cond_t()
    private var queue: [@Sendable () -> Void] = []
    private var threads = 0
    private var idle = 0

    public init(limit: Int) {
        self.limit = max(1, limit)
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&condition, nil)
    }

    /// Runs `work` on a worker thread soon.
    public func submit(_ work: @escaping @Sendable () -> Void) {
        pthread_mutex_lock(&mutex)
        queue.append(work)
        let start = idle == 0 && threads < limit
        if start { threads += 1 }
        pthread_cond_signal(&condition)
        pthread_mutex_unlock(&mutex)
        guard start else { return }
        do {
            try POSIXThread.spawn(name: "blocking worker", detached: true) { [self] in serve() }
        } catch {
            // No new thread (the process is at its limit): the threads there are take it.
            pthread_mutex_lock(&mutex)
            threads -= 1
            pthread_mutex_unlock(&mutex)
            if threads == 0 { reportToStandardErrorPOSIX("needletail: cannot start a worker thread: \(error)") }
        }
    }

    private func serve() {
        pthread_mutex_lock(&mutex)
        while true {
            while queue.isEmpty {
                idle += 1
                pthread_cond_wait(&condition, &mutex)
                idle -= 1
            }
            let next = queue.removeFirst()
            pthread_mutex_unlock(&mutex)
            next()
            pthread_mutex_lock(&mutex)
        }
    }
}

/// One line on standard error (the POSIX target depends on no logger).
func reportToStandardErrorPOSIX(_ line: String) {
    let text = line + "\n"
    _ = text.withCString { write(2, $0, strlen($0)) }
}
