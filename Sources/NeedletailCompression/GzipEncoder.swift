import CZlib
import NeedletailBytes

/// A fragment compressed once, to be spliced into the gzip stream of every answer that
/// references it: raw deflate blocks that refer to nothing before them and end byte-aligned
/// (a sync flush, not final), with the CRC-32 and length of the bytes they stand for.
final class DeflatedFragment: Sendable {
    let compressed: SharedBytes
    let crc: UInt32
    let count: Int
    /// `crc32_combine_gen(count)`: appending this fragment's CRC costs a few dozen instructions.
    let crcOperator: UInt

    init(compressed: SharedBytes, crc: UInt32, count: Int) {
        self.compressed = compressed
        self.crc = crc
        self.count = count
        crcOperator = CRC32.combineOperator(count: count)
    }
}

/// Gzip for answers made per request, one per loop (not thread-safe).
///
/// A body is a chain of links (`Chunks`): bytes rendered for this request, and fragments that
/// every answer shares (a `StaticHTML`, a `RenderCache` entry, a long literal). Only the first
/// are compressed per request. A shared fragment is compressed once — on first use, kept with
/// the fragment itself (a `SharedBytes`'s attachment) or, for immortal bytes, in this encoder —
/// and its compressed blocks are referenced, not copied, by each answer's chain. Splicing works
/// because deflate's blocks may be concatenated: before a fragment the per-request stream is
/// ended by a full flush (byte-aligned, and nothing after it refers back), the fragment itself
/// was compressed as a stream of its own ended by a sync flush, and the CRC-32 of the whole is
/// combined from the parts' (`crc32_combine_op`). docs/COMPRESSION.md has the measurements.
public final class GzipEncoder {
    /// How hard to compress.
    public struct Settings: Sendable {
        /// zlib level for the bytes rendered per request: 1 (fastest) by default; their runs are
        /// short, and higher levels gain little on them (docs/COMPRESSION.md).
        public var level: Int32 = 1
        /// zlib level for shared fragments, compressed once each.
        public var fragmentLevel: Int32 = 6
        /// The per-request stream's history (2^windowBits bytes) and hash table (2^(memoryLevel+7)
        /// entries): both small by default, because the runs between fragments are short and a
        /// reset or a full flush clears the table (docs/COMPRESSION.md).
        public var windowBits: Int32 = 12
        public var memoryLevel: Int32 = 4
        /// Runs shorter than this between spliced fragments are copied into stored blocks rather
        /// than deflated: ending a deflate block builds its Huffman tables (about 38,000
        /// instructions in zlib), which costs more than a few hundred bytes on the wire.
        public var storeBelow = 1024
        /// Referenced links at least this long are spliced; shorter ones are compressed with the
        /// request's own bytes (a splice costs two flushes, about 10 bytes).
        public var spliceMinimum = 512
        public init() {}
    }

    public let settings: Settings
    private let deflater: Deflater
    private let fragmentDeflater: Deflater
    /// Immortal bytes' compressed forms, by address (immortal bytes never move or die).
    private var immortal: [UInt: DeflatedFragment] = [:]
    /// Immortal bytes are few by construction (literals, `StaticHTML`); a bound all the same.
    private static let immortalLimit = 4096

    /// Nil when zlib cannot allocate its state.
    public init?(settings: Settings = Settings()) {
        guard let d = Deflater(level: settings.level, windowBits: settings.windowBits, memoryLevel: settings.memoryLevel), let f = Deflater(level: settings.fragmentLevel) else { return nil }
        self.settings = settings
        deflater = d
        fragmentDeflater = f
    }

    /// `body` as one gzip member.
    public func encode(_ body: Chunks) -> Chunks {
        var out = Chunks()
        GzipFraming.appendHeader(to: out.buffer(reserving: body.count / 4 + 64))
        var crc: UInt32 = 0
        var total = 0
        var pending = false  // bytes given to the per-request stream since its last flush
        var used = false  // the stream took bytes since its last reset
        var stored: Int? = nil  // where the open stored block's header is in `out`'s buffer
        func count(_ bytes: UnsafeRawBufferPointer) {
            crc = CRC32.update(crc, bytes)
            total += bytes.count
        }
        func closeStored() {
            guard let at = stored else { return }
            let buffer = out.buffer()
            StoredBlock.patch(buffer, header: at)
            stored = nil
        }
        /// A short run between splices: copied into a stored block (no deflate block to end, no
        /// Huffman tables built for a few hundred bytes), unless the stream is open anyway.
        func store(_ bytes: UnsafeRawBufferPointer) {
            if pending { return deflate(bytes) }
            count(bytes)
            var rest = bytes
            while !rest.isEmpty {
                let buffer = out.buffer(reserving: rest.count + 5)
                // (Patched through this reference: asking `out` for its buffer again while one
                // is held here would copy it.)
                if let at = stored, buffer.count - at - 5 >= StoredBlock.maximum {
                    StoredBlock.patch(buffer, header: at)
                    stored = nil
                }
                if stored == nil { stored = StoredBlock.open(buffer) }
                let room = StoredBlock.maximum - (buffer.count - stored! - 5)
                let n = min(room, rest.count)
                buffer.append(UnsafeRawBufferPointer(rebasing: rest[..<n]))
                rest = UnsafeRawBufferPointer(rebasing: rest[n...])
            }
        }
        func deflate(_ bytes: UnsafeRawBufferPointer) {
            closeStored()
            count(bytes)
            pending = true
            used = true
            deflater.deflate(bytes, flush: Z_NO_FLUSH, into: out.buffer(reserving: bytes.count / 2 + 64))
        }
        func splice(_ fragment: DeflatedFragment) {
            closeStored()
            if pending {
                deflater.deflate(UnsafeRawBufferPointer(start: nil, count: 0), flush: Z_FULL_FLUSH, into: out.buffer(reserving: 64))
                pending = false
            }
            out.append(shared: fragment.compressed)
            crc = CRC32.combine(crc, fragment.crc, operator: fragment.crcOperator)
            total += fragment.count
        }
        func run(_ bytes: UnsafeRawBufferPointer) {
            if bytes.count < settings.storeBelow { store(bytes) } else { deflate(bytes) }
        }
        let minimum = settings.spliceMinimum
        body.withLinks { storage, part in
            switch part {
            case .owned(let range):
                run(UnsafeRawBufferPointer(rebasing: storage!.bytes[range]))
            case .immortal(let bytes):
                if bytes.count >= minimum, let fragment = immortalFragment(bytes) {
                    splice(fragment)
                } else {
                    run(bytes)
                }
            case .shared(let shared):
                if shared.count >= minimum, let fragment = sharedFragment(shared) {
                    splice(fragment)
                } else {
                    run(shared.bytes)
                }
            }
        }
        closeStored()
        let tail = out.buffer(reserving: 64)
        if pending {
            deflater.deflate(UnsafeRawBufferPointer(start: nil, count: 0), flush: Z_FINISH, into: tail)
        } else {
            // Byte-aligned already: an empty final stored block ends the stream.
            StoredBlock.appendFinalEmpty(tail)
            if used { deflater.reset() }
        }
        GzipFraming.appendTrailer(crc: crc, count: total, to: tail)
        return out
    }

    private func immortalFragment(_ bytes: UnsafeRawBufferPointer) -> DeflatedFragment? {
        let key = UInt(bitPattern: bytes.baseAddress)
        if let f = immortal[key], f.count == bytes.count { return f }
        guard immortal.count < Self.immortalLimit else { return nil }
        let f = deflated(bytes)
        immortal[key] = f
        return f
    }

    private func sharedFragment(_ shared: SharedBytes) -> DeflatedFragment? {
        if let f = shared.attachment as? DeflatedFragment { return f }
        // Another loop may attach its own copy at the same moment: the first one stays.
        return shared.attach(deflated(shared.bytes)) as? DeflatedFragment
    }

    private func deflated(_ bytes: UnsafeRawBufferPointer) -> DeflatedFragment {
        let out = ByteBuffer(capacity: bytes.count / 3 + 64)
        fragmentDeflater.deflate(bytes, flush: Z_SYNC_FLUSH, into: out)
        fragmentDeflater.reset()
        return DeflatedFragment(
            compressed: SharedBytes(copying: out.bytes), crc: CRC32.update(0, bytes), count: bytes.count)
    }
}

/// Whole-buffer gzip and gunzip: assets compressed ahead of time, and checks.
public enum Gzip {
    /// `bytes` as one gzip member, at `level` (9: assets compressed once).
    public static func compress(_ bytes: UnsafeRawBufferPointer, level: Int32 = 9) -> [UInt8] {
        guard let d = Deflater(level: level) else { return [] }
        let out = ByteBuffer(capacity: bytes.count / 2 + 64)
        GzipFraming.appendHeader(to: out)
        d.deflate(bytes, flush: Z_FINISH, into: out)
        GzipFraming.appendTrailer(crc: CRC32.update(0, bytes), count: bytes.count, to: out)
        return Array(out.bytes)
    }

    /// The bytes of a gzip stream (all its members), or nil when it is not valid gzip or would
    /// be longer than `limit`.
    public static func decompress(_ bytes: [UInt8], limit: Int = 64 << 20) -> [UInt8]? {
        var stream = z_stream()
        guard nt_inflate_init_gzip(&stream) == Z_OK else { return nil }
        defer { inflateEnd(&stream) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        return bytes.withUnsafeBufferPointer { input -> [UInt8]? in
            stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress)
            stream.avail_in = uInt(input.count)
            while true {
                let result = chunk.withUnsafeMutableBufferPointer { space -> Int32 in
                    stream.next_out = space.baseAddress
                    stream.avail_out = uInt(space.count)
                    let r = inflate(&stream, Z_NO_FLUSH)
                    out.append(contentsOf: space[0..<(space.count - Int(stream.avail_out))])
                    return r
                }
                guard out.count <= limit else { return nil }
                switch result {
                case Z_STREAM_END:
                    if stream.avail_in == 0 { return out }
                    guard inflateReset(&stream) == Z_OK else { return nil }  // another member
                case Z_OK: continue
                case Z_BUF_ERROR where stream.avail_in == 0: return nil  // truncated
                default: return nil
                }
            }
        }
    }
}

/// Deflate's stored blocks (RFC 1951 §3.2.4), written at a byte boundary: a header byte
/// (BFINAL, BTYPE 00), LEN and its complement, then the bytes.
enum StoredBlock {
    static let maximum = 65_535

    /// Writes a non-final header with a length to patch; returns where it is.
    static func open(_ buffer: ByteBuffer) -> Int {
        let at = buffer.count
        for _ in 0..<5 { buffer.append(0) }
        return at
    }

    /// Sets LEN and NLEN of the block at `header` to the bytes written after it.
    static func patch(_ buffer: ByteBuffer, header at: Int) {
        let len = UInt16(buffer.count - at - 5)
        let p = buffer.base + at
        p.storeBytes(of: 0, as: UInt8.self)
        (p + 1).storeBytes(of: UInt8(len & 0xff), as: UInt8.self)
        (p + 2).storeBytes(of: UInt8(len >> 8), as: UInt8.self)
        (p + 3).storeBytes(of: UInt8(~len & 0xff), as: UInt8.self)
        (p + 4).storeBytes(of: UInt8(~len >> 8), as: UInt8.self)
    }

    static func appendFinalEmpty(_ buffer: ByteBuffer) {
        for b: UInt8 in [1, 0, 0, 0xff, 0xff] { buffer.append(b) }
    }
}
