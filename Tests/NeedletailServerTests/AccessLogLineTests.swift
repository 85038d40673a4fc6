import NeedletailBytes
import Testing
@testable import NeedletailHTTP
@testable import NeedletailServer

/// The access log's fields written from the request's bytes: nginx's escaping and addresses.
@Suite struct AccessLogLineTests {
    func escaped(_ bytes: [UInt8]?) -> String {
        let out = ByteBuffer(capacity: 64)
        if let bytes {
            bytes.withUnsafeBytes { AccessLogBuffer.appendEscaped($0, to: out) }
        } else {
            AccessLogBuffer.appendEscaped(nil, to: out)
        }
        return String(decoding: Array(out.bytes), as: UTF8.self)
    }

    @Test func escapesAsNginxDoes() {
        #expect(escaped(Array("plain /path?x=1".utf8)) == "plain /path?x=1")
        #expect(escaped(Array(#"a "q" \ b"#.utf8)) == #"a \x22q\x22 \x5C b"#)
        #expect(escaped([0x41, 0x09, 0x7f, 0x7e, 0xc3, 0xa9, 0x20]) == #"A\x09\x7F~\xC3\xA9 "#)
        #expect(escaped([]) == "")
        #expect(escaped(nil) == "-")
    }

    @Test func addresses() {
        func text(_ r: RemoteAddress) -> String {
            let out = ByteBuffer(capacity: 64)
            AccessLogBuffer.appendAddress(r, to: out)
            return String(decoding: Array(out.bytes), as: UTF8.self)
        }
        let a: UInt32 = [UInt8]([192, 0, 2, 255]).withUnsafeBytes { $0.load(as: UInt32.self) }
        #expect(text(.ipv4(a)) == "192.0.2.255")
        #expect(text(.ipv4(0)) == "0.0.0.0")
        #expect(text(.unknown) == "-")
        #expect(text(.text("")) == "-")
        #expect(text(.text("2001:db8::1")) == "2001:db8::1")
        #expect(text(.text("bad\"addr")) == #"bad\x22addr"#)
        let lo: UInt64 = [UInt8]([0, 0, 0, 0, 0, 0, 0, 1]).withUnsafeBytes { $0.load(as: UInt64.self) }
        #expect(text(.ipv6(0, lo)) == "::1")
    }
}
