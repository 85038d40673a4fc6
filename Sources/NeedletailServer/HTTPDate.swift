import Glibc

/// The IMF-fixdate for the Date field (RFC 9110 5.6.7), formatted at most once per second
/// per loop.
final class HTTPDateCache {
    @exclusivity(unchecked) private(set) var second = -1
    /// `Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n`
    @exclusivity(unchecked) private(set) var line: [UInt8] = []

    private static let days: [StaticString] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months: [StaticString] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// The Date line for wall-clock second `now`.
    @inline(__always)
    func dateLine(now: Int) -> [UInt8] {
        if now != second { refresh(now) }
        return line
    }

    private func refresh(_ now: Int) {
        second = now
        var t = time_t(now)
        var tm = Glibc.tm()
        gmtime_r(&t, &tm)
        var out: [UInt8] = Array("Date: ".utf8)
        func two(_ v: Int32) { out.append(UInt8(48 + v / 10)); out.append(UInt8(48 + v % 10)) }
        let day = HTTPDateCache.days[Int(tm.tm_wday)]
        out.append(contentsOf: UnsafeBufferPointer(start: day.utf8Start, count: 3))
        out.append(contentsOf: ", ".utf8)
        two(tm.tm_mday)
        out.append(32)
        let mon = HTTPDateCache.months[Int(tm.tm_mon)]
        out.append(contentsOf: UnsafeBufferPointer(start: mon.utf8Start, count: 3))
        out.append(32)
        let year = Int(tm.tm_year) + 1900
        out.append(contentsOf: String(year).utf8)
        out.append(32)
        two(tm.tm_hour); out.append(UInt8(ascii: ":"))
        two(tm.tm_min); out.append(UInt8(ascii: ":"))
        two(tm.tm_sec)
        out.append(contentsOf: " GMT\r\n".utf8)
        line = out
    }
}
