#if canImport(Glibc)
    import Glibc
#endif

/// A per-thread stack of spare `ByteBuffer`s, so that rendering a small page does not cost a
/// malloc and a free of its buffer each time.
///
/// `Chunks` takes its buffer from here; a codec that has copied a response into its own output
/// hands the buffer back with `Chunks.recycle()`. Each thread has its own stack (no locks);
/// a buffer recycled on another thread simply joins that thread's stack.
public enum BufferPool {
    /// Buffers larger than this are freed rather than kept.
    public static let maxKeptCapacity = 64 * 1024
    /// Most buffers kept per thread.
    public static let maxKept = 64

    final class Stack {
        @exclusivity(unchecked) var buffers: [ByteBuffer] = []
        init() { buffers.reserveCapacity(BufferPool.maxKept) }
    }

    private static let key: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k) { pointer in
            if let p = pointer { Unmanaged<Stack>.fromOpaque(p).release() }
        }
        return k
    }()

    @inline(__always)
    static var stack: Stack {
        if let p = pthread_getspecific(key) { return Unmanaged<Stack>.fromOpaque(p).takeUnretainedValue() }
        let s = Stack()
        pthread_setspecific(key, Unmanaged.passRetained(s).toOpaque())
        return s
    }

    /// An empty buffer with room for at least `capacity` bytes.
    @inlinable
    public static func take(capacity: Int) -> ByteBuffer {
        if let b = popSpare() {
            b.removeAll()
            b.reserve(capacity)
            return b
        }
        return ByteBuffer(capacity: max(256, capacity))
    }

    @usableFromInline
    static func popSpare() -> ByteBuffer? {
        stack.buffers.popLast()
    }

    /// Keeps `buffer` for reuse on this thread. The caller must hold the only reference.
    public static func recycle(_ buffer: ByteBuffer) {
        guard buffer.capacity <= maxKeptCapacity else { return }
        let s = stack
        if s.buffers.count < maxKept { s.buffers.append(buffer) }
    }
}
