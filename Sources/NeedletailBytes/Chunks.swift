import Synchronization

/// Bytes written once and from then on only read, by any thread: a fragment rendered once and
/// referenced by every response that shows it (`SharedHTML`, a `RenderCache` entry). Chains
/// and output queues hold it by reference, without copying; the last holder frees it.
public final class SharedBytes: @unchecked Sendable {
    /// The bytes' owner, for output queues that keep it alive until written (SPI: it must
    /// never be written to, and is read from any thread).
    @_spi(Output) public var buffer: ByteBuffer { _buffer }
    @usableFromInline let _buffer: ByteBuffer

    /// A copy of `bytes`.
    public init(copying bytes: UnsafeRawBufferPointer) {
        _buffer = ByteBuffer(capacity: bytes.count)
        _buffer.append(bytes)
    }

    /// Number of bytes.
    @inlinable public var count: Int { _buffer.count }

    /// The bytes (valid while this object lives).
    @inlinable public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: _buffer.base, count: _buffer.count) }

    private let _attachment = AtomicLazyReference<AnyObject>()

    /// A form derived from these bytes once and kept as long as they live (the gzip encoder's
    /// compressed copy), or nil. Set at most once; read from any thread.
    public var attachment: AnyObject? { _attachment.load() }

    /// Attaches `value` unless something is attached already; returns what is attached.
    @discardableResult
    public func attach(_ value: AnyObject & Sendable) -> AnyObject { _attachment.storeIfNil(value) }
}

/// A response body as a chain of byte chunks, ready for one `writev(2)`.
///
/// Two kinds of chunk: *static* bytes that live for the whole process (string literals, markup
/// encoded once) are referenced by address and never copied; *dynamic* bytes (escaped text,
/// numbers) are appended to one buffer this value owns. Static chunks shorter than
/// `Chunks.coalesceLimit` are copied into that buffer instead, so that a small page goes out as
/// one iovec and a large page as a few.
public struct Chunks {
    /// One link of the chain.
    public enum Part {
        /// Bytes that never move or die (string literals, interned markup).
        case immortal(UnsafeRawBufferPointer)
        /// A range of the chain's own buffer.
        case owned(Range<Int>)
        /// Bytes shared with other chains, held by reference.
        case shared(SharedBytes)
    }

    /// Static chunks shorter than this are copied rather than referenced: an iovec costs more
    /// than a short memcpy.
    public static let coalesceLimit = 512

    /// Finished links; the bytes from `openStart` to the end of `storage` form one more.
    @usableFromInline var closed: [Part] = []
    /// The dynamic bytes; `nil` until something is appended.
    @usableFromInline var storage: ByteBuffer?
    @usableFromInline var openStart = 0

    /// An empty chain.
    @inlinable
    public init() {}

    /// A chain from parts a writer assembled itself (`HTMLOutput`): `closed` links, then the
    /// bytes of `buffer` from `openStart` on as the last one.
    @inlinable
    public init(assembling closed: [Part], buffer: ByteBuffer, openStart: Int) {
        self.closed = closed
        self.storage = buffer
        self.openStart = openStart
    }

    /// A chain holding one static chunk.
    @inlinable
    public init(_ literal: StaticString) {
        append(literal)
    }

    /// The buffer that dynamic bytes go into, made unique before any write (value semantics).
    @inlinable
    public mutating func buffer(reserving n: Int = 0) -> ByteBuffer {
        // Check uniqueness before binding: a `let` copy would itself be a second reference.
        if isKnownUniquelyReferenced(&storage) {
            let s = storage.unsafelyUnwrapped
            s.reserve(n)
            return s
        }
        let fresh = BufferPool.take(capacity: n + (storage?.count ?? 0))
        if let old = storage { fresh.append(old.bytes) }
        storage = fresh
        return fresh
    }

    /// Gives the chain's buffer back to the thread's `BufferPool` if nothing else holds it, and
    /// empties the chain. For codecs, after they have copied the bytes out.
    public mutating func recycle() {
        if storage != nil && isKnownUniquelyReferenced(&storage) {
            BufferPool.recycle(storage!)
        }
        storage = nil
        closed = []
        openStart = 0
    }

    /// Appends a static string literal: referenced if long, copied if short.
    @inlinable
    public mutating func append(_ literal: StaticString) {
        append(static: UnsafeRawBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
    }

    /// Appends bytes that the caller promises stay valid and unchanged for the life of the process.
    @inlinable
    public mutating func append(static bytes: UnsafeRawBufferPointer) {
        if bytes.count < Chunks.coalesceLimit {
            buffer(reserving: bytes.count).append(bytes)
        } else {
            closeOpenPart()
            closed.append(.immortal(bytes))
        }
    }

    /// Appends bytes shared with other chains: referenced if long, copied if short.
    @inlinable
    public mutating func append(shared bytes: SharedBytes) {
        if bytes.count < Chunks.coalesceLimit {
            buffer(reserving: bytes.count).append(bytes.bytes)
        } else {
            closeOpenPart()
            closed.append(.shared(bytes))
        }
    }

    @usableFromInline
    mutating func closeOpenPart() {
        if let s = storage, s.count > openStart {
            closed.append(.owned(openStart..<s.count))
            openStart = s.count
        }
    }

    /// Appends a copy of `bytes` (already escaped or otherwise safe for where they go).
    @inlinable
    public mutating func append(copying bytes: UnsafeRawBufferPointer) {
        buffer(reserving: bytes.count).append(bytes)
    }

    /// Appends the UTF-8 bytes of `string` verbatim (no escaping).
    @inlinable
    public mutating func append(unescaped string: String) {
        string.withUTF8Bytes { append(copying: UnsafeRawBufferPointer($0)) }
    }

    /// Appends another chain: its static and shared chunks by reference, its dynamic bytes by copy.
    public mutating func append(_ other: Chunks) {
        other.withLinks { storage, part in
            switch part {
            case .immortal(let p): append(static: p)
            case .shared(let s): append(shared: s)
            case .owned(let r): if let b = storage { append(copying: UnsafeRawBufferPointer(rebasing: b.bytes[r])) }
            }
        }
    }

    /// Total number of bytes in the chain.
    public var count: Int {
        var n = storage.map { $0.count } ?? 0
        for part in closed {
            switch part {
            case .immortal(let p): n += p.count
            case .shared(let s): n += s.count
            case .owned: break  // counted in storage
            }
        }
        return n
    }

    /// Whether the chain holds no bytes.
    public var isEmpty: Bool { count == 0 }

    /// Calls `immortal` or `owned` for each link in order (shared links go to `owned`). Pointers
    /// passed to `owned` are valid only during the call.
    @inlinable
    public func forEachPart(_ immortal: (Part) -> Void, owned: (UnsafeRawBufferPointer) -> Void) {
        for part in closed {
            switch part {
            case .immortal: immortal(part)
            case .owned(let r): owned(UnsafeRawBufferPointer(rebasing: storage!.bytes[r]))
            case .shared(let s): owned(s.bytes)
            }
        }
        if let s = storage, s.count > openStart {
            owned(UnsafeRawBufferPointer(rebasing: s.bytes[openStart...]))
        }
    }

    /// Visits the links without building an array: `storage` is the owner of every `.owned` range.
    @inlinable
    public func withLinks(_ body: (ByteBuffer?, Part) -> Void) {
        for part in closed { body(storage, part) }
        if let s = storage, s.count > openStart { body(s, .owned(openStart..<s.count)) }
    }

    /// Whether every byte is in the owned buffer (no referenced static chunk): such a chain is
    /// one contiguous run.
    @inlinable
    public var isSingleOwnedRun: Bool { closed.isEmpty }

    /// The whole chain as one array (tests, small bodies).
    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(count)
        forEachPart { part in
            if case .immortal(let p) = part { out.append(contentsOf: p) }
        } owned: {
            out.append(contentsOf: $0)
        }
        return out
    }

    /// The whole chain decoded as UTF-8 (tests).
    public var string: String { String(decoding: bytes, as: UTF8.self) }
}
