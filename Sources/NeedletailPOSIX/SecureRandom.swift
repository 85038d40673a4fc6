import Glibc

/// 128 random bits from the kernel's CSPRNG, as 32 lower-case hex digits.
public func randomToken() -> String { randomHex(bytes: 16) }

/// `bytes` (at most 16) random bytes from the kernel's CSPRNG as lower-case hex digits.
public func randomHex(bytes: Int) -> String {
    SecureRandom.withBytes(bytes) { raw in
        String(unsafeUninitializedCapacity: 2 * raw.count) { out in
            let digits: StaticString = "0123456789abcdef"
            let d = digits.utf8Start
            for (i, b) in raw.enumerated() {
                out[2 * i] = d[Int(b >> 4)]
                out[2 * i + 1] = d[Int(b & 15)]
            }
            return 2 * raw.count
        }
    }
}

/// Bytes from the kernel's CSPRNG (`/dev/urandom`, the same generator as `getrandom(2)`), read
/// 4 KiB at a time into a per-thread buffer: a page view needs two tokens, and two system calls
/// per token cost more than the rest of making them. Each byte is handed out once.
enum SecureRandom {
    final class Pool {
        var bytes = [UInt8](repeating: 0, count: 4096)
        var used = 4096
    }

    static let key: pthread_key_t = {
        var k = pthread_key_t()
        pthread_key_create(&k) { p in if let p { Unmanaged<Pool>.fromOpaque(p).release() } }
        return k
    }()

    static let urandom: Int32 = open("/dev/urandom", O_RDONLY | O_CLOEXEC)

    /// `n` at most 16 (what tokens need; the fallback makes 16).
    static func withBytes<T>(_ n: Int, _ body: (UnsafeRawBufferPointer) -> T) -> T {
        let pool: Pool
        if let p = pthread_getspecific(key) {
            pool = Unmanaged<Pool>.fromOpaque(p).takeUnretainedValue()
        } else {
            pool = Pool()
            pthread_setspecific(key, Unmanaged.passRetained(pool).toOpaque())
        }
        if pool.used + n > pool.bytes.count && !refill(pool) {
            // No /dev/urandom (a chroot): Swift's generator, which uses getrandom(2).
            var g = SystemRandomNumberGenerator()
            let words = (g.next() as UInt64, g.next() as UInt64)
            return withUnsafeBytes(of: words) { body(UnsafeRawBufferPointer(rebasing: $0[0..<min(n, 16)])) }
        }
        defer {
            // Handed out once: wiped and skipped.
            for i in pool.used..<(pool.used + n) { pool.bytes[i] = 0 }
            pool.used += n
        }
        return pool.bytes.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[pool.used..<(pool.used + n)])) }
    }

    static func refill(_ pool: Pool) -> Bool {
        guard urandom >= 0 else { return false }
        var got = 0
        while got < pool.bytes.count {
            let r = pool.bytes.withUnsafeMutableBytes { read(urandom, $0.baseAddress! + got, $0.count - got) }
            if r < 0 && errno == EINTR { continue }
            if r <= 0 { return false }
            got += r
        }
        pool.used = 0
        return true
    }
}
