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
            // Exact per byte.
            let names = ByteScan.nameMask(w), zeros = ByteScan.zeroMask(w), digits = ByteScan.mask(of: w, between: 0x2f, and: 0x3a)
            for (i, b) in bytes.enumerated() {
                let isName = (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39) || b == 0x2d
                #expect((names >> (8 * i + 7)) & 1 == (isName ? 1 : 0), "name byte \(b) in \(bytes)")
                #expect((zeros >> (8 * i + 7)) & 1 == (b == 0 ? 1 : 0), "zero byte \(b) in \(bytes)")
                #expect((digits >> (8 * i + 7)) & 1 == (b >= 0x30 && b <= 0x39 ? 1 : 0), "digit \(b) in \(bytes)")
            }
            // Exact for the lowest flagged byte: the offset of the first control byte.
            let control = ByteScan.controlMask(w)
            let firstControl = bytes.firstIndex { $0 < 32 || $0 == 127 }
            #expect((control == 0 ? nil : control.trailingZeroBitCount >> 3) == firstControl, "\(bytes)")
        }
    }

    /// Every byte value at every position, next to the bytes that would show a borrow.
    @Test func nameMaskIsExactForEveryByteValue() {
        for position in 0..<8 {
            for neighbour: UInt8 in [0, 0x2c, 0x2d, 0x2f, 0x3a, 0x40, 0x5b, 0x60, 0x7b, 0x80, 0xff] {
                for b in 0...255 {
                    var bytes = [UInt8](repeating: neighbour, count: 8)
                    bytes[position] = UInt8(b)
                    let w = bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
                    let isName = (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39) || b == 0x2d
                    #expect((ByteScan.nameMask(w) >> (8 * position + 7)) & 1 == (isName ? 1 : 0), "byte \(b) at \(position) by \(neighbour)")
                }
            }
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

    /// `firstFlagged` finds the first flagged byte from every start at every length, short
    /// runs and the last bytes included, with a mask that flags zero (the padding of the last
    /// word must never count).
    @Test func firstFlaggedFindsTheFirstFromEveryStart() {
        var random = Random(state: 7)
        let isBad: (UInt8) -> Bool = { $0 < 32 || $0 == 127 }
        for length in 0..<40 {
            for _ in 0..<100 {
                var bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: random.next() % 95 + 32) }
                if length > 0 && random.next() % 3 != 0 {
                    for _ in 0..<Int(random.next() % 3 + 1) {
                        bytes[Int(random.next() % UInt64(length))] = [0, 9, 31, 127][Int(random.next() % 4)]
                    }
                }
                for start in 0...length {
                    let expected = bytes[start...].firstIndex(where: isBad) ?? length
                    let found = bytes.withUnsafeBytes {
                        ByteScan.firstFlagged(in: $0.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!, from: start, count: length) {
                            ByteScan.controlMask($0)
                        }
                    }
                    #expect(found == expected, "\(bytes) from \(start)")
                }
            }
        }
    }
}
