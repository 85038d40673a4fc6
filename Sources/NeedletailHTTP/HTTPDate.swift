import Glibc

/// HTTP dates (IMF-fixdate, RFC 9110 section 5.6.7): `Sun, 06 Nov 1994 08:49:37 GMT`, for the
/// Date field of every answer (through a per-loop ``Cache``) and Last-Modified and
/// If-Modified-Since of files.
public enum HTTPDate {
    static let days: [StaticString] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    static let months: [StaticString] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// `Sun, 06 Nov 1994 08:49:37 GMT` for `t` seconds since the epoch.
    public static func format(_ t: Int) -> String {
        var out: [UInt8] = []
        append(t, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends the IMF-fixdate of `t` to `out`.
    static func append(_ t: Int, to out: inout [UInt8]) {
        var tt = time_t(t)
        var tm = Glibc.tm()
        gmtime_r(&tt, &tm)
        func two(_ v: Int32) { out.append(UInt8(48 + v / 10)); out.append(UInt8(48 + v % 10)) }
        out.append(contentsOf: UnsafeBufferPointer(start: days[Int(tm.tm_wday)].utf8Start, count: 3))
        out.append(contentsOf: ", ".utf8)
        two(tm.tm_mday)
        out.append(32)
        out.append(contentsOf: UnsafeBufferPointer(start: months[Int(tm.tm_mon)].utf8Start, count: 3))
        out.append(32)
        out.append(contentsOf: String(Int(tm.tm_year) + 1900).utf8)
        out.append(32)
        two(tm.tm_hour); out.append(UInt8(ascii: ":"))
        two(tm.tm_min); out.append(UInt8(ascii: ":"))
        two(tm.tm_sec)
        out.append(contentsOf: " GMT".utf8)
    }

    /// Seconds since the epoch, or nil if `text` is not an IMF-fixdate.
    public static func parse(_ text: String) -> Int? {
        let b = Array(text.utf8)
        // "Sun, 06 Nov 1994 08:49:37 GMT": fixed positions.
        guard b.count == 29, b[3] == UInt8(ascii: ","), b[4] == 32, b[7] == 32, b[11] == 32, b[16] == 32,
            b[19] == UInt8(ascii: ":"), b[22] == UInt8(ascii: ":"), b[25] == 32, Array(b[26...]) == Array("GMT".utf8)
        else { return nil }
        func number(_ r: Range<Int>) -> Int32? {
            var v: Int32 = 0
            for i in r {
                guard b[i] >= 48 && b[i] <= 57 else { return nil }
                v = v * 10 + Int32(b[i] - 48)
            }
            return v
        }
        guard let month = months.firstIndex(where: { m in (0..<3).allSatisfy { m.utf8Start[$0] == b[8 + $0] } }),
            let day = number(5..<7), let year = number(12..<16), let hour = number(17..<19),
            let minute = number(20..<22), let second = number(23..<25)
        else { return nil }
        var tm = tm()
        tm.tm_year = year - 1900
        tm.tm_mon = Int32(month)
        tm.tm_mday = day
        tm.tm_hour = hour
        tm.tm_min = minute
        tm.tm_sec = second
        return Int(timegm(&tm))
    }

    /// The `Date: …\r\n` line of answers, formatted at most once per second. One per loop:
    /// loop-confined, no lock.
    package final class Cache {
        @exclusivity(unchecked) private var second = -1
        @exclusivity(unchecked) private var line: [UInt8] = []

        package init() {}

        /// The Date line for wall-clock second `now`.
        @inline(__always)
        package func dateLine(now: Int) -> [UInt8] {
            if now != second { refresh(now) }
            return line
        }

        private func refresh(_ now: Int) {
            second = now
            var out = Array("Date: ".utf8)
            HTTPDate.append(now, to: &out)
            out.append(contentsOf: "\r\n".utf8)
            line = out
        }
    }
}
