import NeedletailBytes
import Glibc

extension Request {
    /// The value of cookie `name`, if the request has it. Scans the Cookie fields in place: a
    /// memcmp where a pair starts and a memchr to its end (no per-byte loop over the values).
    public func cookie(_ name: String) -> String? {
        return name.withUTF8Bytes { key -> String? in
            if key.isEmpty { return nil }
            return headers.firstValue("cookie") { value -> String? in
                value.withUnsafeBufferPointer { v -> String? in
                    guard let base = v.baseAddress else { return nil }
                    let end = v.count
                    var i = 0
                    while i < end {
                        while i < end && (base[i] == 32 || base[i] == UInt8(ascii: ";")) { i += 1 }
                        let pairStart = i
                        let rest = end - pairStart
                        let semicolon = rest > 0 ? memchr(base + pairStart, Int32(UInt8(ascii: ";")), rest) : nil
                        let pairEnd = semicolon.map { UnsafePointer<UInt8>($0.assumingMemoryBound(to: UInt8.self)) - base } ?? end
                        if pairEnd - pairStart > key.count, base[pairStart + key.count] == UInt8(ascii: "="),
                            memcmp(base + pairStart, key.baseAddress!, key.count) == 0
                        {
                            let valueStart = pairStart + key.count + 1
                            return String(decoding: UnsafeBufferPointer(start: base + valueStart, count: pairEnd - valueStart), as: UTF8.self)
                        }
                        i = pairEnd
                    }
                    return nil
                }
            }
        }
    }
}
