import Glibc

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

/// Group commit: many writers wait for their entries to be durable; one of them runs the
/// fdatasync for everything appended so far while the others wait, then all wake.
final class GroupSync: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var cond = pthread_cond_t()
    private var appended = 0
    private var durable = 0
    private var syncing = false
    private var lastSync = 0.0
    /// Writers waiting for a sync: when several are, the leader lingers a moment so that the
    /// next sync covers more of them (PostgreSQL's commit_delay, applied only under contention).
    private var waiting = 0

    init() {
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&cond, nil)
    }

    deinit {
        pthread_cond_destroy(&cond)
        pthread_mutex_destroy(&mutex)
    }

    func reset(to offset: Int) {
        pthread_mutex_lock(&mutex)
        appended = offset
        durable = offset
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
        pthread_mutex_lock(&mutex)
        waiting += 1
        defer {
            waiting -= 1
            pthread_mutex_unlock(&mutex)
        }
        while durable < offset {
            if syncing {
                pthread_cond_wait(&cond, &mutex)
                continue
            }
            syncing = true
            // Let writers that were woken with us append first, so that one sync covers them
            // too (a larger group: more commits per fdatasync). A lone writer does not wait.
            let contended = waiting > 1
            pthread_mutex_unlock(&mutex)
            if contended { usleep(50) } else { sched_yield() }
            pthread_mutex_lock(&mutex)
            let target = appended
            pthread_mutex_unlock(&mutex)
            var failure: StoreError?
            do { try sync() } catch { failure = error }
            pthread_mutex_lock(&mutex)
            syncing = false
            if failure == nil { durable = max(durable, target) }
            pthread_cond_broadcast(&cond)
            if let f = failure { throw f }
        }
    }

    /// For `.everySecond`: syncs if anything was appended and the last sync is old enough.
    func syncIfBehind(everyMilliseconds ms: Double, sync: () throws(StoreError) -> Void) {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        let now = Double(ts.tv_sec) * 1000 + Double(ts.tv_nsec) / 1e6
        pthread_mutex_lock(&mutex)
        let behind = durable < appended && now - lastSync >= ms
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
