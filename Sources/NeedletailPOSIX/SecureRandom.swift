import Glibc

/// 128 random bits from the kernel's CSPRNG, as 32 lower-case hex digits.
public func randomToken() -> String { randomHex(bytes: 16) }

/// 90 random bits from the kernel's CSPRNG as 15 URL-safe characters (`A–Z a–z 0–9 - _`):
/// an id that fits a small string, so that making, hashing and comparing it allocates nothing.
/// For ids that are unguessable within one session (a page's view, its actions); sessions
/// themselves carry 128 bits (`randomToken`).
public func randomID() -> String {
    SecureRandom.withBytes(15) { raw in
        String(unsafeUninitializedCapacity: 15) { out in
            let digits: StaticString = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
            let d = digits.utf8Start
            for i in 0..<15 { out[i] = d[Int(raw[i] & 63)] }
            return 15
        }
    }
}

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
        static let size = 4096
        let bytes = UnsafeMutableRawPointer.allocate(byteCount: Pool.size, alignment: 16)
        var used = Pool.size
        deinit { bytes.deallocate() }
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
        if pool.used + n > Pool.size && !refill(pool) {
            // No /dev/urandom (a chroot): Swift's generator, which uses getrandom(2).
            var g = SystemRandomNumberGenerator()
            let words = (g.next() as UInt64, g.next() as UInt64)
            return withUnsafeBytes(of: words) { body(UnsafeRawBufferPointer(rebasing: $0[0..<min(n, 16)])) }
        }
        let start = pool.bytes + pool.used
        pool.used += n
        // Handed out once: wiped once used.
        defer { start.initializeMemory(as: UInt8.self, repeating: 0, count: n) }
        return body(UnsafeRawBufferPointer(start: start, count: n))
    }

    static func refill(_ pool: Pool) -> Bool {
        guard urandom >= 0 else { return false }
        var got = 0
        while got < Pool.size {
            let r = read(urandom, pool.bytes + got, Pool.size - got)
            if r < 0 && errno == EINTR { continue }
            if r <= 0 { return false }
            got += r
        }
        pool.used = 0
        return true
    }
}
