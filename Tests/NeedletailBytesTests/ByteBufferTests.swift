import Testing
@testable import NeedletailBytes

/// Appends of every short length (the inline copy) and across growth (the call).
@Suite struct ByteBufferTests {
    @Test func appendsOfEveryLengthKeepEveryByte() {
        let source = (0..<64).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
        for capacity in [16, 17, 31, 64] {
            let buffer = ByteBuffer(capacity: capacity)
            var expected: [UInt8] = []
            for n in 0...40 {
                source.withUnsafeBytes { buffer.append(UnsafeRawBufferPointer(rebasing: $0[(n % 7)..<(n % 7 + n)])) }
                expected += source[(n % 7)..<(n % 7 + n)]
                buffer.append(0xEE)
                expected.append(0xEE)
            }
            #expect(Array(buffer.bytes) == expected, "capacity \(capacity)")
        }
    }

    @Test func staticStringsOfEveryShortLength() {
        let buffer = ByteBuffer(capacity: 16)
        let parts: [StaticString] = ["", "<", "=\"", "li>", "<li>", "</li>", " class", " class=", "</span>", " href=\"x", "</button>", " datetime=\"", "<nav><ul><li><a", "0123456789abcdefg"]
        for p in parts { buffer.append(p) }
        #expect(String(decoding: buffer.bytes, as: UTF8.self) == parts.map { $0.description }.joined())
    }
}
