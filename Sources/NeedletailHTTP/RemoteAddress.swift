import Glibc

/// A peer address, kept in binary until someone asks for its text.
public enum RemoteAddress: Sendable, Equatable, CustomStringConvertible {
    case unknown
    /// An IPv4 address as in `in_addr.s_addr` (network byte order).
    case ipv4(UInt32)
    /// An IPv6 address's 16 bytes, as two words in memory order.
    case ipv6(UInt64, UInt64)
    /// An address given as text (REMOTE_ADDR behind a web server).
    case text(String)

    public var description: String {
        switch self {
        case .unknown: return ""
        case .text(let s): return s
        case .ipv4(let a):
            let b = withUnsafeBytes(of: a) { Array($0) }
            return "\(b[0]).\(b[1]).\(b[2]).\(b[3])"
        case .ipv6(let hi, let lo):
            var addr = in6_addr()
            withUnsafeMutableBytes(of: &addr) { dst in
                withUnsafeBytes(of: hi) { dst.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: 8) }
                withUnsafeBytes(of: lo) { (dst.baseAddress! + 8).copyMemory(from: $0.baseAddress!, byteCount: 8) }
            }
            var buf = [CChar](repeating: 0, count: 64)
            inet_ntop(AF_INET6, &addr, &buf, 64)
            return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }
}
