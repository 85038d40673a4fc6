import Glibc

extension Request {
    /// The value of cookie `name`, if the request has it. Scans the Cookie fields in place.
    public func cookie(_ name: String) -> String? {
        var name = name
        return name.withUTF8 { key -> String? in
            if key.isEmpty { return nil }
            return headers.firstValue("cookie") { value -> String? in
                value.withUnsafeBufferPointer { v in
                    var i = 0
                    while i < v.count {
                        while i < v.count && (v[i] == 32 || v[i] == UInt8(ascii: ";")) { i += 1 }
                        let pairStart = i
                        while i < v.count && v[i] != UInt8(ascii: ";") { i += 1 }
                        let pair = UnsafeBufferPointer(rebasing: v[pairStart..<i])
                        if pair.count > key.count, pair[key.count] == UInt8(ascii: "="),
                            memcmp(pair.baseAddress!, key.baseAddress!, key.count) == 0
                        {
                            return String(decoding: UnsafeBufferPointer(rebasing: pair[(key.count + 1)...]), as: UTF8.self)
                        }
                    }
                    return nil
                }
            }
        }
    }
}
