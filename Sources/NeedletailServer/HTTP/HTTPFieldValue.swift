/// ASCII case-insensitive comparison with a lowercase literal.
@inline(__always)
func lowerEquals(_ bytes: UnsafeRawBufferPointer, _ lower: StaticString) -> Bool {
    guard bytes.count == lower.utf8CodeUnitCount else { return false }
    let l = lower.utf8Start
    for i in 0..<bytes.count {
        var b = bytes[i]
        if b >= 65 && b <= 90 { b |= 0x20 }
        if b != l[i] { return false }
    }
    return true
}

/// Calls `body` with each comma-separated, whitespace-trimmed, non-empty list item.
func forEachListItem(_ value: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> Void) {
    var start = 0
    while start <= value.count {
        var end = start
        while end < value.count && value[end] != UInt8(ascii: ",") { end += 1 }
        var s = start, e = end
        while s < e && (value[s] == 32 || value[s] == 9) { s += 1 }
        while e > s && (value[e - 1] == 32 || value[e - 1] == 9) { e -= 1 }
        if e > s { body(UnsafeRawBufferPointer(rebasing: value[s..<e])) }
        start = end + 1
    }
}

/// A non-negative decimal of at most 18 digits, or `nil`.
func parseDecimal(_ bytes: UnsafeRawBufferPointer) -> Int? {
    guard !bytes.isEmpty, bytes.count <= 18 else { return nil }
    var n = 0
    for b in bytes {
        guard b >= 48 && b <= 57 else { return nil }
        n = n * 10 + Int(b - 48)
    }
    return n
}
