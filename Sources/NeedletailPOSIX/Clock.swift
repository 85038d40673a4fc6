import Glibc

/// Seconds on the monotonic clock.
@Sendable public func secondsSinceBoot() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec)
}
