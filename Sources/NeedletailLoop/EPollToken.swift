/// What an epoll event is about, packed into the event's 64-bit user data (SwiftNIO's
/// `EPollUserData` does the same): a listener by its index, the loop's wake-up eventfd, or a
/// connection by its fd and a generation, so that an event for an fd closed (and maybe reused)
/// earlier in the same batch is recognised as stale.
struct EPollToken: Equatable {
    let raw: UInt64

    private static let listenerBit: UInt64 = 1 << 63
    private static let wakeBit: UInt64 = 1 << 62
    private static let watchBit: UInt64 = 1 << 61

    /// The loop's wake-up eventfd.
    static let wake = EPollToken(raw: wakeBit)

    /// Listener `index` of the loop.
    static func listener(_ index: Int) -> EPollToken { EPollToken(raw: listenerBit | UInt64(index & 0xffff)) }

    /// A watched descriptor (`EventLoop.watch`): its slot and the slot's generation (28 bits).
    static func watch(slot: Int, generation: UInt32) -> EPollToken {
        EPollToken(raw: watchBit | UInt64(UInt32(truncatingIfNeeded: slot)) | (UInt64(generation & 0x0fff_ffff) << 32))
    }

    /// A connection on `fd`, accepted as the loop's `generation`-th (29 bits kept: bit 61 marks a watch).
    static func connection(fd: Int32, generation: UInt32) -> EPollToken {
        EPollToken(raw: UInt64(UInt32(bitPattern: fd)) | (UInt64(generation & 0x1fff_ffff) << 32))
    }

    enum Kind: Equatable {
        case listener(index: Int)
        case wake
        case watch(slot: Int, generation: UInt32)
        case connection(fd: Int)
    }

    @inline(__always)
    var kind: Kind {
        if raw & Self.listenerBit != 0 { return .listener(index: Int(raw & 0xffff)) }
        if raw == Self.wakeBit { return .wake }
        if raw & Self.watchBit != 0 {
            return .watch(slot: Int(raw & 0xffff_ffff), generation: UInt32((raw >> 32) & 0x0fff_ffff))
        }
        return .connection(fd: Int(raw & 0xffff_ffff))
    }
}
