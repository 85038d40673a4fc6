import NeedletailBytes

/// Escaping of dynamic text for the HTML contexts it can land in.
///
/// Text content needs `& < >` replaced; attribute values (always written double-quoted) need
/// `& " ' <` too. Both functions copy unchanged runs in one go and only branch on the few bytes
/// that need replacing, so escaping costs close to a memcpy on ordinary text.
public enum HTMLEscaping {
    /// The replacement for `byte` in text and attribute values, or `nil` when it stays as is.
    @inlinable @inline(__always)
    static func entity(_ byte: UInt8) -> StaticString? {
        switch byte {
        case UInt8(ascii: "&"): return "&amp;"
        case UInt8(ascii: "<"): return "&lt;"
        case UInt8(ascii: ">"): return "&gt;"
        case UInt8(ascii: "\""): return "&quot;"
        case UInt8(ascii: "'"): return "&#39;"
        default: return nil
        }
    }

    /// For each byte: 1 if it needs an entity in attribute values (`& " ' < >`), 2 if in text
    /// too (`& < >`), 0 otherwise. A literal, so it costs no initialisation.
    @usableFromInline
    static let table: StaticString = """
        0000000000000000000000000000000000100021000000000000000000002020\
        0000000000000000000000000000000000000000000000000000000000000000\
        0000000000000000000000000000000000000000000000000000000000000000\
        0000000000000000000000000000000000000000000000000000000000000000
        """

    /// Appends `text` to `buffer` with the bytes whose table entry is at least `level`
    /// replaced by entities. Unchanged runs are copied in one go.
    @inlinable @inline(__always)
    static func appendReplacing(_ text: UnsafeRawBufferPointer, to buffer: ByteBuffer, level: UInt8) {
        let n = text.count
        guard n > 0, let base = text.baseAddress else { return }
        let t = table.utf8Start
        var runStart = 0
        var i = 0
        while true {
            // Eight bytes per test, short values and the last bytes in one test too, then
            // straight to the first byte that needs an entity.
            i = ByteScan.firstFlagged(in: base, from: i, count: n) { w in
                // Only the lowest flagged byte is used: `lowestZeroMask` is exact for it.
                var m = ByteScan.lowestZeroMask(w ^ 0x2626_2626_2626_2626) | ByteScan.lowestZeroMask(w ^ 0x3c3c_3c3c_3c3c_3c3c)
                    | ByteScan.lowestZeroMask(w ^ 0x3e3e_3e3e_3e3e_3e3e)
                if level <= UInt8(ascii: "1") {
                    m |= ByteScan.lowestZeroMask(w ^ 0x2222_2222_2222_2222) | ByteScan.lowestZeroMask(w ^ 0x2727_2727_2727_2727)
                }
                return m
            }
            if i >= n { break }
            let b = text[i]
            if t[Int(b)] >= level {
                if i > runStart { buffer.append(UnsafeRawBufferPointer(rebasing: text[runStart..<i])) }
                buffer.append(entity(b)!)
                runStart = i + 1
            }
            i += 1
        }
        if n > runStart { buffer.append(UnsafeRawBufferPointer(rebasing: text[runStart..<n])) }
    }

    /// Appends `text` to `buffer` with `& < > " '` replaced by entities: safe in element
    /// content and in double- or single-quoted attribute values alike.
    @inlinable
    public static func appendEscaped(_ text: UnsafeRawBufferPointer, to buffer: ByteBuffer) {
        appendReplacing(text, to: buffer, level: UInt8(ascii: "1"))
    }

    /// Appends `text` to `buffer` with only `& < >` replaced: enough for element content, where
    /// quotes mean nothing.
    @inlinable
    public static func appendText(_ text: UnsafeRawBufferPointer, to buffer: ByteBuffer) {
        appendReplacing(text, to: buffer, level: UInt8(ascii: "2"))
    }

    /// Comment text that cannot close or break the comment: no `--` anywhere (each becomes
    /// `- -`), no leading `>` or `->`, no trailing `-`.
    public static func commentSafe(_ text: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        for b in text.utf8 {
            if b == UInt8(ascii: "-"), out.last == UInt8(ascii: "-") { out.append(UInt8(ascii: " ")) }
            if b == UInt8(ascii: ">"), out.isEmpty || out == [UInt8(ascii: "-")] { out.append(UInt8(ascii: " ")) }
            out.append(b)
        }
        if out.last == UInt8(ascii: "-") { out.append(UInt8(ascii: " ")) }
        return String(decoding: out, as: UTF8.self)
    }

    /// Whether `url` may go into a URL attribute (`href`, `src`, `action`, ...) as it is:
    /// `javascript:` and `vbscript:` are refused in any letter case and with any leading
    /// whitespace or control characters (which browsers skip), and so is `data:` unless it is a
    /// raster image (`data:image/png`, `gif`, `jpeg`, `webp`, `avif`). Relative URLs and other
    /// schemes pass.
    public static func isSafeURL(_ url: String) -> Bool {
        // The scheme's first twelve bytes, lowered, packed into two words (no array, no
        // string per URL: this runs for every link of every page).
        var low: UInt64 = 0, high: UInt64 = 0, count = 0
        var started = false
        for b in url.utf8 {
            if !started && b <= 0x20 { continue }
            started = true
            // Browsers drop tab and newline anywhere in a URL ("java\tscript:").
            if b == 0x09 || b == 0x0A || b == 0x0D { continue }
            if b == UInt8(ascii: ":") { break }
            if b == UInt8(ascii: "/") || b == UInt8(ascii: "?") || b == UInt8(ascii: "#") { return true }
            if count == 12 { return true }
            let lowered = UInt64(b | 0x20)  // ASCII lower case (good enough for the letters compared)
            if count < 8 { low |= lowered << (8 * count) } else { high |= lowered << (8 * (count - 8)) }
            count += 1
        }
        // "javascript", "vbscript", "data", as little-endian words.
        if count == 10 && low == 0x6972_6373_6176_616a && high == 0x7470 { return false }
        if count == 8 && low == 0x7470_6972_6373_6276 { return false }
        if count == 4 && low == 0x6174_6164 {
            var lower = ""
            for ch in url.utf8.drop(while: { $0 <= 0x20 }).prefix(20) {
                lower.unicodeScalars.append(Unicode.Scalar(ch | (ch >= 0x41 && ch <= 0x5A ? 0x20 : 0)))
            }
            for ok in ["data:image/png", "data:image/gif", "data:image/jpeg", "data:image/webp", "data:image/avif"]
            where lower.hasPrefix(ok) {
                return true
            }
            return false
        }
        return true
    }

    /// What an unsafe URL is replaced with: inert, and easy to spot in the page.
    public static let refusedURL = "about:invalid#needletail-refused-url"

    /// Appends `text` as the body of a JSON (and JavaScript) string literal, quotes included:
    /// `"` `\\` and control characters escaped as JSON requires, and `< > &` as `\u003c \u003e
    /// \u0026` (plus U+2028/U+2029), so that no `</script`, `<!--` or `]]>` can appear in any
    /// letter case: safe inside `<script>` and in event-handler attributes.
    public static func appendJSONString(_ text: String, to buffer: ByteBuffer) {
        buffer.append(UInt8(ascii: "\""))
        text.withUTF8Bytes { utf8 in
            let hex: StaticString = "0123456789abcdef"
            var i = 0
            let n = utf8.count
            var runStart = 0
            func flush(_ end: Int) {
                if end > runStart { buffer.append(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(utf8)[runStart..<end])) }
            }
            while i < n {
                let b = utf8[i]
                var replacement: StaticString? = nil
                var unicode: UInt8? = nil
                switch b {
                case UInt8(ascii: "\""): replacement = "\\\""
                case UInt8(ascii: "\\"): replacement = "\\\\"
                case 0x0A: replacement = "\\n"
                case 0x0D: replacement = "\\r"
                case 0x09: replacement = "\\t"
                case UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "&"), UInt8(ascii: "'"): unicode = b
                case 0..<0x20, 0x7F: unicode = b
                case 0xE2 where i + 2 < n && utf8[i + 1] == 0x80 && (utf8[i + 2] == 0xA8 || utf8[i + 2] == 0xA9):
                    flush(i)
                    buffer.append(utf8[i + 2] == 0xA8 ? "\\u2028" : "\\u2029")
                    i += 3
                    runStart = i
                    continue
                default: break
                }
                if let r = replacement {
                    flush(i); buffer.append(r); runStart = i + 1
                } else if let u = unicode {
                    flush(i)
                    buffer.append("\\u00")
                    buffer.append(hex.utf8Start[Int(u >> 4)])
                    buffer.append(hex.utf8Start[Int(u & 0xF)])
                    runStart = i + 1
                }
                i += 1
            }
            flush(n)
        }
        buffer.append(UInt8(ascii: "\""))
    }

    /// `text` as a JSON string literal (see `appendJSONString`).
    public static func jsonString(_ text: String) -> String {
        let b = ByteBuffer(capacity: text.utf8.count + 8)
        appendJSONString(text, to: b)
        return String(decoding: b.bytes, as: UTF8.self)
    }

    /// `text` as a CSS string literal, double-quoted: quotes, backslash, `< > { } ; &` and
    /// control characters become CSS hex escapes (`\\3c `), so nothing can end the string, the
    /// declaration or the `<style>` element.
    public static func cssString(_ text: String) -> String {
        var out = "\""
        for u in text.unicodeScalars {
            let v = u.value
            switch u {
            case "\"", "'", "\\", "<", ">", "{", "}", ";", "&": out += "\\" + String(v, radix: 16) + " "
            default:
                if v < 0x20 || v == 0x7F { out += "\\" + String(v, radix: 16) + " " } else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }

    /// `text` escaped as a new string (tests, logs).
    public static func escaped(_ text: String) -> String {
        let b = ByteBuffer(capacity: text.utf8.count + 16)
        text.withUTF8Bytes { appendEscaped(UnsafeRawBufferPointer($0), to: b) }
        return String(decoding: b.bytes, as: UTF8.self)
    }
}

extension Chunks {
    /// Appends `text` escaped for HTML element content or attribute values.
    @inlinable
    public mutating func append(escaping text: String) {
        text.withUTF8Bytes { utf8 in
            let raw = UnsafeRawBufferPointer(utf8)
            HTMLEscaping.appendEscaped(raw, to: buffer(reserving: raw.count))
        }
    }

    /// Appends the decimal form of `value` (needs no escaping).
    @inlinable
    public mutating func append(_ value: Int) {
        buffer(reserving: 20).appendDecimal(value)
    }
}
