import CZlib
import NeedletailBytes

/// One raw deflate stream (zlib), reused with `deflateReset`: making a stream allocates and
/// clears about 270 KB, which costs more than compressing a small page. Not thread-safe: one
/// per thread or per loop.
final class Deflater {
    private var stream = z_stream()
    let level: Int32

    /// Nil only when zlib cannot allocate its state.
    init?(level: Int32, windowBits: Int32 = 15, memoryLevel: Int32 = 8) {
        self.level = level
        guard nt_deflate_init_raw(&stream, level, windowBits, memoryLevel) == Z_OK else { return nil }
    }

    deinit { deflateEnd(&stream) }

    /// Forgets everything compressed so far (for a stream ended by a flush rather than Z_FINISH).
    func reset() { deflateReset(&stream) }

    /// Compresses `input` into `out`, then flushes as `flush` says (Z_NO_FLUSH, Z_FULL_FLUSH,
    /// Z_SYNC_FLUSH, Z_FINISH). With Z_FINISH the stream is reset for the next use.
    func deflate(_ input: UnsafeRawBufferPointer, flush: Int32, into out: ByteBuffer) {
        stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
        stream.avail_in = uInt(input.count)
        while true {
            // Room for the input's worst case (stored blocks: 5 bytes per 16 KB) and a flush.
            let room = Int(stream.avail_in) + Int(stream.avail_in) / 1000 + 64
            var result = Z_OK
            out.appendWriting(maxCount: room) { space in
                stream.next_out = space.baseAddress!.assumingMemoryBound(to: Bytef.self)
                stream.avail_out = uInt(space.count)
                result = CZlib.deflate(&stream, flush)
                return space.count - Int(stream.avail_out)
            }
            if result == Z_STREAM_ERROR { break }  // a misuse of the stream; not reachable from input
            if flush == Z_FINISH {
                if result == Z_STREAM_END { break }
            } else if stream.avail_in == 0 && stream.avail_out > 0 {
                break  // all input taken and, with a flush, all output delivered
            }
            // Z_BUF_ERROR means no progress was possible with this room: more room is made above.
        }
        stream.next_in = nil
        if flush == Z_FINISH { deflateReset(&stream) }
    }
}

/// CRC-32 (the gzip trailer's), from zlib.
enum CRC32 {
    static func update(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return crc }
        return UInt32(crc32_z(uLong(crc), base.assumingMemoryBound(to: Bytef.self), z_size_t(bytes.count)))
    }

    /// The operator that appends `count` bytes' CRC (`crc32_combine_op`), made once per fragment.
    static func combineOperator(count: Int) -> UInt { UInt(crc32_combine_gen(numericCast(count))) }

    /// The CRC of `a` followed by `b`, given `b`'s operator.
    static func combine(_ a: UInt32, _ b: UInt32, operator op: UInt) -> UInt32 {
        UInt32(crc32_combine_op(uLong(a), uLong(b), uLong(op)))
    }
}

/// The gzip member's framing (RFC 1952) around raw deflate data.
enum GzipFraming {
    /// ID1 ID2, CM=8 (deflate), no flags, MTIME 0, XFL 0, OS 3 (Unix).
    static let header: [UInt8] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]

    static func appendHeader(to out: ByteBuffer) { header.withUnsafeBytes { out.append($0) } }

    /// CRC-32 and the length modulo 2^32, little-endian.
    static func appendTrailer(crc: UInt32, count: Int, to out: ByteBuffer) {
        let size = UInt32(truncatingIfNeeded: count)
        for v in [crc, size] {
            out.append(UInt8(v & 0xff))
            out.append(UInt8((v >> 8) & 0xff))
            out.append(UInt8((v >> 16) & 0xff))
            out.append(UInt8(v >> 24))
        }
    }
}
