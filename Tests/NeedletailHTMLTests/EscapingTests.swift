import NeedletailBytes
import NeedletailHTML
import Testing

@Suite struct EscapingTests {
    @Test func escapesTheFiveCharacters() {
        #expect(HTMLEscaping.escaped("<TLUG> & \"q\" 'a'") == "&lt;TLUG&gt; &amp; &quot;q&quot; &#39;a&#39;")
        #expect(HTMLEscaping.escaped("plain ünïcödé ✓") == "plain ünïcödé ✓")
        #expect(HTMLEscaping.escaped("") == "")
        #expect(HTMLEscaping.escaped("<<<") == "&lt;&lt;&lt;")
    }

    /// The word-at-a-time skip finds a special byte at any offset of texts of any length.
    @Test func everySpecialIsEscapedAtEveryOffset() {
        func reference(_ s: [UInt8], attribute: Bool) -> String {
            var out = ""
            for b in s {
                switch b {
                case UInt8(ascii: "&"): out += "&amp;"
                case UInt8(ascii: "<"): out += "&lt;"
                case UInt8(ascii: ">"): out += "&gt;"
                case UInt8(ascii: "\"") where attribute: out += "&quot;"
                case UInt8(ascii: "'") where attribute: out += "&#39;"
                default: out += String(decoding: [b], as: UTF8.self)
                }
            }
            return out
        }
        for length in 0..<24 {
            for offset in 0..<max(length, 1) {
                for special in Array("&<>\"'%=-".utf8) {
                    var s = Array(repeating: UInt8(ascii: "a"), count: length)
                    if length > 0 { s[offset] = special }
                    if length > 9 { s[length - 1] = UInt8(ascii: "<") }
                    for attribute in [true, false] {
                        let out = ByteBuffer()
                        s.withUnsafeBytes {
                            attribute ? HTMLEscaping.appendEscaped($0, to: out) : HTMLEscaping.appendText($0, to: out)
                        }
                        #expect(String(decoding: out.bytes, as: UTF8.self) == reference(s, attribute: attribute), "\(s) \(attribute)")
                    }
                }
            }
        }
    }

    @Test func chunksCoalesceSmallStaticAndReferenceLarge() {
        var c = Chunks()
        c.append("<h1>Hello ")
        c.append(escaping: "<x>")
        c.append("</h1>")
        #expect(c.string == "<h1>Hello &lt;x&gt;</h1>")
        #expect(c.isSingleOwnedRun, "small static pieces are copied into one run")
        #expect(c.count == 24)

        let big = String(repeating: "x", count: 600)
        var d = Chunks()
        d.append("<p>")
        big.utf8CString.withUnsafeBufferPointer { _ in }
        let staticBig: StaticString = """
            xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx
            """
        d.append(staticBig)
        d.append(escaping: "&")
        d.append("</p>")
        #expect(!d.isSingleOwnedRun, "a large static chunk is referenced, not copied")
        #expect(d.count == 3 + staticBig.utf8CodeUnitCount + 5 + 4)
        #expect(d.string == "<p>" + staticBig.description + "&amp;</p>")
        var parts: [Chunks.Part] = []
        d.withLinks { _, part in parts.append(part) }
        #expect(parts.count == 3)
        if case .immortal(let p) = parts[1] {
            #expect(p.baseAddress == UnsafeRawPointer(staticBig.utf8Start), "referenced by address")
        } else {
            Issue.record("middle part should be immortal")
        }
    }

    @Test func chunksHaveValueSemantics() {
        var a = Chunks()
        a.append(escaping: "one")
        var b = a
        b.append(escaping: " two")
        #expect(a.string == "one")
        #expect(b.string == "one two")
        var c = Chunks()
        c.append("[")
        c.append(b)
        c.append(42)
        #expect(c.string == "[one two42")
    }

    @Test func byteBufferDecimalAndGrowth() {
        let b = ByteBuffer(capacity: 16)
        for v in [0, 7, 10, 99, 1_234_567_890_123, -5] { b.appendDecimal(v); b.append(UInt8(ascii: " ")) }
        #expect(String(decoding: b.bytes, as: UTF8.self) == "0 7 10 99 1234567890123 -5 ")
        b.removeFirst(2)
        #expect(String(decoding: b.bytes, as: UTF8.self).hasPrefix("7 10"))
        for _ in 0..<10_000 { b.append(UInt8(1)) }
        #expect(b.count == 10_000 + 25)
    }

    @Test func byteBufferDigitsMatchTheStandardLibrary() {
        let values = [0, 1, 9, 10, 15, 16, 255, 256, 4095, 0x16b, 1 << 40, Int.max] + (0..<200).map { _ in Int.random(in: 0...Int.max) }
        for v in values {
            let b = ByteBuffer(capacity: 4)
            b.appendHex(v)
            b.append(UInt8(ascii: " "))
            b.appendDecimal(v)
            b.append(UInt8(ascii: " "))
            b.appendDecimal(-v)
            #expect(String(decoding: b.bytes, as: UTF8.self) == String(v, radix: 16) + " " + String(v) + " " + String(-v))
        }
        let min = ByteBuffer(capacity: 4)
        min.appendDecimal(Int.min)
        #expect(String(decoding: min.bytes, as: UTF8.self) == String(Int.min))
    }
}

@Suite struct ChunkBufferReuseTests {
    @Test func appendsGoToOneBufferUntilShared() {
        var c = Chunks()
        c.append(escaping: "a")
        let first = ObjectIdentifier(c.buffer())
        c.append(escaping: "b")
        c.append("c")
        #expect(ObjectIdentifier(c.buffer()) == first, "a uniquely held chain appends in place")
        let copy = c
        c.append("d")
        #expect(ObjectIdentifier(c.buffer()) != first, "a shared chain copies before writing")
        #expect(copy.string == "abc")
        #expect(c.string == "abcd")
    }

    @Test func recycledBuffersAreReused() {
        var c = Chunks()
        c.append(escaping: "hello")
        let b = ObjectIdentifier(c.buffer())
        c.recycle()
        #expect(c.isEmpty)
        var d = Chunks()
        d.append(escaping: "x")
        #expect(ObjectIdentifier(d.buffer()) == b, "the recycled buffer comes back on this thread")
        #expect(d.string == "x")
    }
}

@Suite struct EscapingTableTests {
    @Test func everyByteIsEscapedExactlyWhenItMustBe() {
        for b in UInt8(0)...UInt8(127) {
            let s = String(UnicodeScalar(b))
            let text = Span(s).renderedString().dropFirst(6).dropLast(7)
            let attr = Span("").title(s).renderedString()
            let textExpected: String
            switch b {
            case UInt8(ascii: "&"): textExpected = "&amp;"
            case UInt8(ascii: "<"): textExpected = "&lt;"
            case UInt8(ascii: ">"): textExpected = "&gt;"
            default: textExpected = s
            }
            #expect(String(text) == textExpected, "byte \(b) in text")
            let attrValue: String
            switch b {
            case UInt8(ascii: "\""): attrValue = "&quot;"
            case UInt8(ascii: "'"): attrValue = "&#39;"
            default: attrValue = textExpected
            }
            #expect(attr == "<span title=\"\(attrValue)\"></span>", "byte \(b) in an attribute")
        }
        #expect(Span("ü ✓ <é>").renderedString() == "<span>ü ✓ &lt;é&gt;</span>")
    }
}
