import CNeedletailLinux
import Glibc

/// A thread of the project's own: event loops, the store's sync thread, the channels' sweeper,
/// the libfcgi responder's workers. One way to start one, whose failure is an error the caller
/// sees (a process at its thread limit, say), never silently ignored.
public enum POSIXThread {
    /// Starts a thread running `body`. `detached`: nobody will join it (it runs until the
    /// process ends, or ends by itself).
    @discardableResult
    public static func spawn(
        name: String, detached: Bool = false, _ body: @escaping @Sendable () -> Void
    ) throws(SystemCallError) -> pthread_t {
        final class Box: Sendable {
            let body: @Sendable () -> Void
            let name: String
            init(_ body: @escaping @Sendable () -> Void, name: String) { (self.body, self.name) = (body, name) }
        }
        var tid = pthread_t()
        let box = Unmanaged.passRetained(Box(body, name: name))
        let rc = pthread_create(
            &tid, nil,
            { arg in
                let box = Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue()
                // What top -H and gdb show (Linux keeps 15 bytes).
                _ = nt_set_thread_name(box.name)
                box.body()
                return nil
            }, box.toOpaque())
        guard rc == 0 else {
            box.release()
            throw SystemCallError("pthread_create (\(name))", errno: rc)
        }
        if detached { pthread_detach(tid) }
        return tid
    }
}
