import CNeedletailLinux
import Glibc
import Synchronization

/// A pthread mutex (a lock that may be held across calls that throw typed errors).
@usableFromInline
final class PThreadLock: @unchecked Sendable {
    // No runtime exclusivity checks: the mutex is only ever passed to pthread calls (the check
    // cost as much as the lock itself).
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

/// Group commit: many writers wait for their entries to be durable; one of them (the leader)
/// runs the fdatasync for everything appended so far while the others sleep, then all wake.
///
/// The sleepers wait on a futex word bumped after each sync, not on a condition variable: a
/// broadcast would have every woken writer take the mutex again, one after the other, before
/// it could return (on two CPUs, sixteen writers queueing for a lock between two syncs). Woken
/// here, a writer reads `durable` (atomic) and returns without the lock.
final class GroupSync: @unchecked Sendable {
    /// Guards `appended`, `syncing` and `lastSync`.
    private var mutex = pthread_mutex_t()
    private var appended = 0
    private var syncing = false
    private var lastSync = 0.0
    /// Offset up to which the log is synced (written by the leader with the mutex held).
    private let durable = Atomic<Int>(0)
    /// Writers in `waitUntilDurable`: when several are, the leader lingers a moment so that the
    /// next sync covers more of them (PostgreSQL's commit_delay, applied only under contention).
    private let waiting = Atomic<Int>(0)
    /// Bumped (with the mutex held) after each sync; waiters sleep on it.
    private let generation: UnsafeMutablePointer<UInt32>

    init() {
        pthread_mutex_init(&mutex, nil)
        generation = .allocate(capacity: 1)
        generation.initialize(to: 0)
    }

    deinit {
        pthread_mutex_destroy(&mutex)
        generation.deallocate()
    }

    func reset(to offset: Int) {
        pthread_mutex_lock(&mutex)
        appended = offset
        durable.store(offset, ordering: .releasing)
        pthread_mutex_unlock(&mutex)
    }

    /// The log now ends at `offset` (called with the store's lock held, in append order).
    func appended(upTo offset: Int) {
        pthread_mutex_lock(&mutex)
        appended = max(appended, offset)
        pthread_mutex_unlock(&mutex)
    }

    /// Returns once everything up to `offset` has been synced, by this thread or another.
    func waitUntilDurable(_ offset: Int, sync: () throws(StoreError) -> Void) throws(StoreError) {
        if durable.load(ordering: .acquiring) >= offset { return }
        waiting.add(1, ordering: .relaxed)
        defer { waiting.subtract(1, ordering: .relaxed) }
        while true {
            pthread_mutex_lock(&mutex)
            if durable.load(ordering: .acquiring) >= offset {
                pthread_mutex_unlock(&mutex)
                return
            }
            if syncing {
                // Read under the mutex: the leader bumps the word under it when done, so a
                // sync that ends after this read makes the wait return at once.
                let seen = nt_atomic_load_u32(generation)
                pthread_mutex_unlock(&mutex)
                _ = nt_futex_wait(generation, seen)
                if durable.load(ordering: .acquiring) >= offset { return }
                continue
            }
            syncing = true
            pthread_mutex_unlock(&mutex)
            // Let writers that were woken with us append first, so that one sync covers them
            // too (a larger group: more commits per fdatasync). A lone writer does not wait.
            if waiting.load(ordering: .relaxed) > 1 { usleep(50) } else { sched_yield() }
            pthread_mutex_lock(&mutex)
            let target = appended
            pthread_mutex_unlock(&mutex)
            var failure: StoreError?
            do { try sync() } catch { failure = error }
            pthread_mutex_lock(&mutex)
            syncing = false
            if failure == nil && target > durable.load(ordering: .relaxed) {
                durable.store(target, ordering: .releasing)
            }
            nt_atomic_increment_u32(generation)
            pthread_mutex_unlock(&mutex)
            _ = nt_futex_wake_all(generation)
            if let f = failure { throw f }
        }
    }

    /// For `.everySecond`: syncs if anything was appended and the last sync is old enough.
    func syncIfBehind(everyMilliseconds ms: Double, sync: () throws(StoreError) -> Void) {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        let now = Double(ts.tv_sec) * 1000 + Double(ts.tv_nsec) / 1e6
        pthread_mutex_lock(&mutex)
        let behind = durable.load(ordering: .relaxed) < appended && now - lastSync >= ms
        let target = appended
        pthread_mutex_unlock(&mutex)
        guard behind else { return }
        try? waitUntilDurable(target, sync: sync)
        pthread_mutex_lock(&mutex)
        lastSync = now
        pthread_mutex_unlock(&mutex)
    }
}

private final class StoreThreadBody {
    let body: () -> Void
    init(_ body: @escaping () -> Void) { self.body = body }
}

/// Starts a pthread (the store depends on Glibc only, not on the loop target).
func spawnStoreThread(_ body: @escaping @Sendable () -> Void) -> pthread_t {
    var tid = pthread_t()
    let box = Unmanaged.passRetained(StoreThreadBody(body)).toOpaque()
    pthread_create(&tid, nil, { arg in
        Unmanaged<StoreThreadBody>.fromOpaque(arg!).takeRetainedValue().body()
        return nil
    }, box)
    return tid
}
