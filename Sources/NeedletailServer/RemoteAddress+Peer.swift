import Glibc
import NeedletailHTTP

extension RemoteAddress {
    /// The address in a `sockaddr_storage` from accept(2).
    init(peer: UnsafePointer<sockaddr_storage>) {
        switch Int32(peer.pointee.ss_family) {
        case AF_INET:
            self = peer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { .ipv4($0.pointee.sin_addr.s_addr) }
        case AF_INET6:
            self = peer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin6 in
                withUnsafeBytes(of: sin6.pointee.sin6_addr) { .ipv6($0.load(as: UInt64.self), $0.load(fromByteOffset: 8, as: UInt64.self)) }
            }
        default:
            self = .unknown
        }
    }
}
