/// The content codings a client accepts (RFC 9110 §12.5.3), as far as Needletail sends them.
public struct AcceptedCodings: Sendable, Equatable {
    public var gzip = false
    public var brotli = false

    public init(gzip: Bool = false, brotli: Bool = false) {
        self.gzip = gzip
        self.brotli = brotli
    }

    /// None: what a request without Accept-Encoding gets (identity).
    public static let none = AcceptedCodings()

    /// From an Accept-Encoding value: `gzip, deflate, br`, `gzip;q=0.5`, `*`, `br;q=0`.
    /// A coding with q=0 is refused; `*` stands for those not named.
    public init(acceptEncoding value: String) {
        self.init(acceptEncoding: Array(value.utf8)[...])
    }

    /// The same from the field's bytes, read in place (`HeaderFields.firstValue`).
    public init(acceptEncoding value: ArraySlice<UInt8>) {
        var star: Bool? = nil, gzip: Bool? = nil, brotli: Bool? = nil
        for item in value.split(separator: UInt8(ascii: ",")) {
            var parts = item.split(separator: UInt8(ascii: ";"), omittingEmptySubsequences: false)[...]
            guard let first = parts.popFirst() else { continue }
            var accepted = true
            for param in parts {
                let p = Self.trimmed(param)
                guard p.count >= 2, p[p.startIndex] | 0x20 == UInt8(ascii: "q"), p[p.startIndex + 1] == UInt8(ascii: "=") else { continue }
                // q=0, q=0.0, q=0.000: refused; any other weight accepts.
                accepted = p.dropFirst(2).contains { $0 != UInt8(ascii: "0") && $0 != UInt8(ascii: ".") }
            }
            let name = Self.trimmed(first)
            if Self.equals(name, "gzip") || Self.equals(name, "x-gzip") {
                gzip = accepted
            } else if Self.equals(name, "br") {
                brotli = accepted
            } else if Self.equals(name, "*") {
                star = accepted
            }
        }
        self.gzip = gzip ?? star ?? false
        self.brotli = brotli ?? star ?? false
    }

    private static func trimmed(_ s: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var t = s
        while let f = t.first, f == 32 || f == 9 { t = t.dropFirst() }
        while let l = t.last, l == 32 || l == 9 { t = t.dropLast() }
        return t
    }

    /// ASCII case-insensitive equality with a lowercase name.
    private static func equals(_ s: ArraySlice<UInt8>, _ name: StaticString) -> Bool {
        guard s.count == name.utf8CodeUnitCount else { return false }
        let n = UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount)
        return zip(s, n).allSatisfy { a, b in (a >= 65 && a <= 90 ? a | 0x20 : a) == b }
    }

    /// Whether answers of `contentType` gain from compression: text, JavaScript, JSON, XML, SVG
    /// and WebAssembly; not images, archives, fonts already compressed, or event streams (their
    /// events must leave as they are written).
    public static func isCompressible(contentType: String) -> Bool {
        let type = contentType.prefix { $0 != ";" }.trimmingCharacters(in: " ").lowercased()
        if type == "text/event-stream" { return false }
        if type.hasPrefix("text/") { return true }
        switch type {
        case "application/javascript", "application/json", "application/xml", "application/xhtml+xml", "image/svg+xml",
            "application/wasm", "application/manifest+json", "application/ld+json", "application/rss+xml",
            "application/atom+xml", "font/ttf", "font/otf", "application/vnd.ms-fontobject":
            return true
        default:
            return type.hasSuffix("+json") || type.hasSuffix("+xml")
        }
    }
}

extension StringProtocol {
    func trimmingCharacters(in set: String) -> String {
        let s = self.drop { set.contains($0) }
        var end = s.endIndex
        while end > s.startIndex, set.contains(s[s.index(before: end)]) { end = s.index(before: end) }
        return String(s[..<end])
    }
}
