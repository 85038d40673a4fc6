import CNeedletailLinux
import Glibc
import NeedletailPOSIX
import Synchronization

/// A pthread mutex (a lock that may be held across calls that throw typed errors).
@usableFromInline
final class PThreadLock: @unchecked Sendable {
    // No runtime exclusivity checks: the mutex is only ever passed to pthread calls.
    @usableFromInline @exclusivity(unchecked) var mutex = pthread_mutex_t()
    init() { pthread_mutex_init(&mutex, nil) }
    deinit { pthread_mutex_destroy(&mutex) }

    @inlinable
    func withLock<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return try body()
    }
}

/// Group commit with a sync thread: writers append, then sleep until a sync covers their
/// entry; one thread runs the fdatasyncs back to back, each covering everything appended
/// before it began.
///
/// Pipelined: while one sync runs, the writers the previous sync woke append their next
/// entries, and the next sync starts as soon as this one ends, covering them. No fixed linger
/// (docs/PERFORMANCE.md, docs/STORE-FORMAT.md).
///
/// Writers sleep on one of two futex words, by the parity of the sync that will cover them,
/// so that the end of a sync wakes only the writers it made durable, not those waiting for
/// the next one. Woken, a writer reads `durable` (atomic) and returns without the mutex.
///
/// A failed sync is final (`failed`): after a failed fdatasync the kernel may have dropped the
/// dirty pages, so a later successful sync proves nothing about earlier entries; every
/// writer waiting then, and every later one, gets the error (PostgreSQL stops for the same
/// reason).
final class GroupSync: @unchecked Sendable {
    /// Guards everything below that is not atomic.
    private var mutex = pthread_mutex_t()
    /// Commits appended so far, numbered from 1 (a count, not a file offset: compaction
    /// rewrites the file shorter, and a writer's offset in the old file would then lie past
    /// the end of the new one and never become durable).
    private var appended = 0
    /// Commits synced: 1...durable are durable (written with the mutex held).
    private let durable = Atomic<Int>(0)
    /// Syncs completed; the next sync to start is number `completed`.
    private var completed = 0
    /// The sync running now, if any: its number and the last commit it covers.
    private var running: (number: Int, target: Int)?
    /// Set by a failed sync; from then on every wait throws it.
    private var failed: StoreError?
    /// The sync thread sleeps on `words[2]` when it has nothing to do.
    private var idle = false
    /// Set by `pause` (no sync may start) until `allDurable` or `resume`.
    private var paused = false
    private var stopping = false
    /// `words[0]`, `words[1]`: bumped when a sync of that parity ends; `words[2]`: work.
    private let words: UnsafeMutablePointer<UInt32>
    private var thread: pthread_t?
    private var write: (([UInt8], Int) throws(StoreError) -> Void)?
    private var sync: (() throws(StoreError) -> Void)?
    /// Entries appended (`appended(_:at:)`) and not written yet: the bytes of the log from
    /// `pendingAt`, contiguous (appends claim space in order under the store's lock).
    private var pending: [UInt8] = []
    private var pendingAt = 0
    /// The sync thread's buffer being written; swapped with `pending` (keeps its capacity).
    private var writing: [UInt8] = []
    /// Tasks waiting for their commit (`durable(_:)`), resumed by the sync that covers it.
    private var waiters: [(commit: Int, continuation: CheckedContinuation<Void, any Error>)] = []

    init() {
        pthread_mutex_init(&mutex, nil)
        words = .allocate(capacity: 3)
        words.initialize(repeating: 0, count: 3)
    }

    deinit {
        pthread_mutex_destroy(&mutex)
        words.deallocate()
    }

    /// Starts the sync thread, which calls `write` (the log's pwrite at an offset) for the
    /// entries handed to it and `sync` (the log's fdatasync).
    func start(write: @escaping ([UInt8], Int) throws(StoreError) -> Void, sync: @escaping () throws(StoreError) -> Void) throws(StoreError)
    {
        self.write = write
        self.sync = sync
        do {
            thread = try POSIXThread.spawn(name: "store sync") { [self] in run() }
        } catch {
            throw StoreError.io("cannot start the sync thread: \(error)")
        }
    }

    /// Syncs what is left and stops the sync thread (waiting writers are served first).
    func stop() {
        guard let t = thread else { return }
        pthread_mutex_lock(&mutex)
        stopping = true
        paused = false
        nt_atomic_increment_u32(words + 2)
        pthread_mutex_unlock(&mutex)
        _ = nt_futex_wake_all(words + 2)
        pthread_join(t, nil)
        thread = nil
        write = nil
        sync = nil
    }

    /// The log was rewritten (compaction) and synced: every commit appended so far is durable.
    /// Lifts a `pause`.
    func allDurable() {
        pthread_mutex_lock(&mutex)
        // `pause` wrote what was handed over, and the store's lock kept appends out since.
        assert(pending.isEmpty, "entries handed over after pause")
        durable.store(appended, ordering: .releasing)
        paused = false
        // Writers asleep for a sync that will not run now (their entries are durable in the
        // new file) wake and see `durable`; the sync thread wakes to serve later appends.
        for i in 0..<3 { nt_atomic_increment_u32(words + i) }
        pthread_mutex_unlock(&mutex)
        for i in 0..<3 { _ = nt_futex_wake_all(words + i) }
    }

    /// Waits for the running sync to end, writes the entries handed over since, and starts no
    /// other sync until `allDurable` or `resume`: the log's file is about to be replaced (a sync
    /// must not run on a descriptor being closed). A failed write is final, as a failed sync.
    func pause() throws(StoreError) {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        // Set first, so that the sync thread starts no other sync meanwhile.
        paused = true
        while let r = running {
            let word = words + (r.number & 1)
            let seen = nt_atomic_load_u32(word)
            pthread_mutex_unlock(&mutex)
            _ = nt_futex_wait(word, seen)
            pthread_mutex_lock(&mutex)
        }
        if let f = failed { throw f }
        if !pending.isEmpty, let write {
            do throws(StoreError) {
                try write(pending, pendingAt)
                pending.removeAll(keepingCapacity: true)
            } catch {
                fail(error)
                throw error
            }
        }
    }

    /// Lifts a `pause` (the replacement failed; the old file stays).
    func resume() {
        pthread_mutex_lock(&mutex)
        paused = false
        nt_atomic_increment_u32(words + 2)
        pthread_mutex_unlock(&mutex)
        _ = nt_futex_wake_all(words + 2)
    }

    /// A commit was appended (called with the store's lock held, in append order); returns its
    /// number, for `waitUntilDurable`.
    func appendedOne() -> Int {
        pthread_mutex_lock(&mutex)
        appended += 1
        let number = appended
        pthread_mutex_unlock(&mutex)
        return number
    }

    /// A commit whose entry the sync thread writes, at `offset`, before the sync that makes it
    /// durable (called with the store's lock held, in append order); returns its number.
    func appended(_ entry: [UInt8], at offset: Int) -> Int {
        pthread_mutex_lock(&mutex)
        if pending.isEmpty { pendingAt = offset }
        pending += entry
        appended += 1
        let number = appended
        pthread_mutex_unlock(&mutex)
        return number
    }

    /// Syncs completed.
    var syncCount: Int {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return completed
    }

    /// The number of the last commit appended.
    var lastAppended: Int {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return appended
    }

    /// Returns once commit number `commit` (and every one before it) is synced; throws if a
    /// sync failed.
    func waitUntilDurable(_ commit: Int) throws(StoreError) {
        if durable.load(ordering: .acquiring) >= commit { return }
        pthread_mutex_lock(&mutex)
        while true {
            if let f = failed {
                pthread_mutex_unlock(&mutex)
                throw f
            }
            if durable.load(ordering: .relaxed) >= commit {
                pthread_mutex_unlock(&mutex)
                return
            }
            // The sync that will cover `commit`: the running one if it reaches it, else the next.
            let number: Int
            if let r = running { number = r.target >= commit ? r.number : r.number + 1 } else { number = completed }
            let word = words + (number & 1)
            let seen = nt_atomic_load_u32(word)
            let wake = idle
            if idle {
                idle = false
                nt_atomic_increment_u32(words + 2)
            }
            pthread_mutex_unlock(&mutex)
            if wake { _ = nt_futex_wake_all(words + 2) }
            _ = nt_futex_wait(word, seen)
            if durable.load(ordering: .acquiring) >= commit { return }
            pthread_mutex_lock(&mutex)
        }
    }

    /// Suspends the calling task until commit number `commit` is synced: no thread sleeps (the
    /// sync thread resumes the task, on its loop); throws if a sync failed.
    func durable(_ commit: Int) async throws(StoreError) {
        if durable.load(ordering: .acquiring) >= commit { return }
        do {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                pthread_mutex_lock(&mutex)
                if let f = failed {
                    pthread_mutex_unlock(&mutex)
                    continuation.resume(throwing: f)
                    return
                }
                if durable.load(ordering: .relaxed) >= commit {
                    pthread_mutex_unlock(&mutex)
                    continuation.resume()
                    return
                }
                waiters.append((commit, continuation))
                let wake = idle
                if idle {
                    idle = false
                    nt_atomic_increment_u32(words + 2)
                }
                pthread_mutex_unlock(&mutex)
                if wake { _ = nt_futex_wake_all(words + 2) }
            }
        } catch let e as StoreError {
            throw e
        } catch {
            throw StoreError.io("\(error)")
        }
    }

    /// The waiting tasks whose commit is durable up to `target`, taken out (mutex held).
    private func takeWaiters(upTo target: Int) -> [CheckedContinuation<Void, any Error>] {
        guard !waiters.isEmpty else { return [] }
        var due: [CheckedContinuation<Void, any Error>] = []
        waiters.removeAll { w in
            guard w.commit <= target else { return false }
            due.append(w.continuation)
            return true
        }
        return due
    }

    /// Records a failed write or sync (with the mutex held) and wakes every writer: no sync
    /// will run any more.
    private func fail(_ error: StoreError) {
        failed = error
        for i in 0...1 { nt_atomic_increment_u32(words + i) }
        for i in 0...1 { _ = nt_futex_wake_all(words + i) }
        let all = waiters
        waiters.removeAll()
        for w in all { w.continuation.resume(throwing: error) }
    }

    /// The sync thread: whenever something is appended and not yet synced, writes the entries
    /// handed over (one pwrite) and syncs.
    private func run() {
        pthread_mutex_lock(&mutex)
        while true {
            if appended > durable.load(ordering: .relaxed) && failed == nil && !paused, let sync {
                let number = completed
                let target = appended
                running = (number, target)
                swap(&pending, &writing)
                let at = pendingAt
                pthread_mutex_unlock(&mutex)
                var failure: StoreError?
                do throws(StoreError) {
                    if !writing.isEmpty, let write { try write(writing, at) }
                    try sync()
                } catch { failure = error }
                writing.removeAll(keepingCapacity: true)
                pthread_mutex_lock(&mutex)
                running = nil
                completed += 1
                if let failure {
                    // No sync will run again: the writers waiting for the next one wake too.
                    fail(failure)
                } else {
                    durable.store(target, ordering: .releasing)
                    let word = words + (number & 1)
                    nt_atomic_increment_u32(word)
                    let resumed = takeWaiters(upTo: target)
                    pthread_mutex_unlock(&mutex)
                    _ = nt_futex_wake_all(word)
                    // Each task goes back to its loop (one wake-up per loop per sync at most: a
                    // loop's queue wakes it only when it was empty).
                    for c in resumed { c.resume() }
                    pthread_mutex_lock(&mutex)
                }
                continue
            }
            if stopping { break }
            idle = true
            let seen = nt_atomic_load_u32(words + 2)
            pthread_mutex_unlock(&mutex)
            _ = nt_futex_wait(words + 2, seen)
            pthread_mutex_lock(&mutex)
            idle = false
        }
        pthread_mutex_unlock(&mutex)
    }
}
