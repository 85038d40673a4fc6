import NeedletailBytes
import Testing

/// The word-at-a-time checks against plain byte loops.
@Suite struct ByteScanTests {
    struct Random {
        var state: UInt64
        mutating func next() -> UInt64 {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return state
        }
    }

    /// Words mostly of one kind of byte with a few of any value, where borrows between bytes
    /// would show a wrong answer.
    @Test func wordTestsAnswerExactly() {
        var random = Random(state: 0x9E37_79B9_7F4A_7C15)
        for _ in 0..<200_000 {
            var bytes = (0..<8).map { _ in UInt8(truncatingIfNeeded: random.next() % 96 + 32) }
            for _ in 0..<Int(random.next() % 3) { bytes[Int(random.next() % 8)] = UInt8(truncatingIfNeeded: random.next()) }
            let w = bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
            for n: UInt64 in [1, 14, 32, 33, 128] {
                #expect(ByteScan.hasByte(of: w, below: n) == bytes.contains { UInt64($0) < n })
            }
            for b: UInt8 in [0, 10, 35, 127, 255] {
                #expect(ByteScan.hasByte(of: w, equalTo: b) == bytes.contains(b))
            }
            #expect(ByteScan.hasHighByte(w) == bytes.contains { $0 >= 128 })
        }
    }

    /// `firstIndex` finds the first bad byte (or none) at every length and position, the
    /// tail shorter than a word included.
    @Test func firstIndexFindsTheFirstBadByte() {
        var random = Random(state: 42)
        let isBad: (UInt8) -> Bool = { ($0 < 32 && $0 != 9) || $0 == 127 }
        for length in 0..<40 {
            for _ in 0..<300 {
                var bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: random.next() % 95 + 32) }
                if length > 0 && random.next() % 4 != 0 {
                    for _ in 0..<Int(random.next() % 3 + 1) {
                        bytes[Int(random.next() % UInt64(length))] = [0, 9, 10, 13, 31, 127, 128, 255][Int(random.next() % 8)]
                    }
                }
                let expected = bytes.firstIndex(where: isBad) ?? length
                let found = bytes.withUnsafeBytes {
                    ByteScan.firstIndex(
                        in: $0, mayHold: { ByteScan.hasByte(of: $0, below: 32) || ByteScan.hasByte(of: $0, equalTo: 127) }, isBad: isBad)
                }
                #expect(found == expected, "\(bytes)")
            }
        }
    }
}
