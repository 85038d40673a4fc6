import CNeedletailLinux
import Glibc
import NeedletailPOSIX
import Synchronization

/// N event loops, each on its own thread.
public final class LoopGroup: Sendable {
    /// The loops, index 0 first.
    public let loops: [EventLoop]
    private let threads = Mutex<[pthread_t]>([])
    private let running = Atomic<Int>(0)

    /// Makes `count` loops (they do not run until `start`).
    public init(
        count: Int, configuration: LoopConfiguration = LoopConfiguration(), log: @escaping LoopLogger = { _, _ in }
    ) throws(SocketError) {
        var loops: [EventLoop] = []
        for i in 0..<max(1, count) {
            loops.append(try EventLoop(index: i, configuration: configuration, log: log))
        }
        self.loops = loops
    }

    /// The number of CPUs this process may run on.
    public static var availableCPUs: Int {
        let n = Int(nt_available_cpus())
        return n > 0 ? n : max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }

    /// Starts one thread per loop; `setup` runs first on each loop's own thread (add listeners
    /// and make loop-confined state there), then the loop runs.
    /// A loop whose thread cannot be started (the process is at its thread limit) is an error;
    /// the loops started before it keep running (`shutdown` and `join` stop them).
    public func start(_ setup: @escaping @Sendable (EventLoop) -> Void) throws(SystemCallError) {
        for loop in loops {
            running.add(1, ordering: .sequentiallyConsistent)
            do {
                let tid = try POSIXThread.spawn(name: "loop \(loop.index)") { [self] in
                    setup(loop)
                    loop.run()
                    running.subtract(1, ordering: .sequentiallyConsistent)
                }
                threads.withLock { $0.append(tid) }
            } catch {
                running.subtract(1, ordering: .sequentiallyConsistent)
                throw error
            }
        }
    }

    /// Number of loops still running.
    public var runningLoops: Int { running.load(ordering: .sequentiallyConsistent) }

    /// Starts a graceful stop on every loop (see `EventLoop.shutdown`).
    public func shutdown(grace: Int) {
        for loop in loops { loop.shutdown(grace: grace) }
    }

    /// Waits for every loop thread to end.
    public func join() {
        let ts = threads.withLock { t in
            let all = t
            t.removeAll()
            return all
        }
        for t in ts { pthread_join(t, nil) }
    }

    /// Blocks SIGINT and SIGTERM in the calling thread (and threads it starts afterwards, which
    /// inherit the mask), so that `waitForTermination` receives them; ignores SIGPIPE, and
    /// SIGXFSZ (a write past a file-size limit then fails with EFBIG, which the store reports,
    /// instead of killing the process). Call before `start`.
    public static func prepareSignals() {
        signal(SIGPIPE, SIG_IGN)
        signal(SIGXFSZ, SIG_IGN)
        var set = sigset_t()
        sigemptyset(&set)
        for sig in handledSignals { sigaddset(&set, sig) }
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// SIGINT and SIGTERM stop; SIGUSR1 reopens logs (blocked even with no access log, so that
    /// logrotate's signal never kills the server); SIGUSR2 upgrades; SIGHUP reloads settings.
    static let handledSignals = [SIGINT, SIGTERM, SIGUSR1, SIGUSR2, SIGHUP]

    /// Waits for SIGINT or SIGTERM, stops gracefully within `grace` seconds (a second signal
    /// stops at once), and returns when every loop has ended. With `drainSeconds` > 0 the
    /// first signal only calls `beginDraining` and the stop begins that many seconds later (or
    /// at a second signal). `handlers`: other signals (SIGUSR1, SIGUSR2, SIGHUP), called on this thread.
    public func runUntilSignalled(
        grace: Int, drainSeconds: Int = 0, beginDraining: (Int32) -> Void = { _ in }, handlers: [Int32: () -> Void] = [:],
        onSignal: (Int32) -> Void = { _ in }
    ) {
        var set = sigset_t()
        sigemptyset(&set)
        for sig in Self.handledSignals { sigaddset(&set, sig) }
        var stopping = false
        var drainUntil: UInt64? = nil
        var tick = timespec(tv_sec: 0, tv_nsec: 100_000_000)
        while runningLoops > 0 {
            let sig = sigtimedwait(&set, nil, &tick)
            if sig > 0, let handler = handlers[sig] {
                handler()
            } else if sig == SIGINT || sig == SIGTERM {
                if drainSeconds > 0 && drainUntil == nil && !stopping {
                    beginDraining(sig)
                    drainUntil = monotonicNanoseconds() + UInt64(drainSeconds) * 1_000_000_000
                } else {
                    onSignal(sig)
                    shutdown(grace: stopping ? 0 : grace)
                    stopping = true
                    drainUntil = nil
                }
            }
            if let until = drainUntil, monotonicNanoseconds() >= until {
                drainUntil = nil
                onSignal(SIGTERM)
                shutdown(grace: grace)
                stopping = true
            }
        }
        join()
    }
}
