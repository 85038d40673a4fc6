import CNeedletailLinux
import Glibc
@_spi(Output) import NeedletailBytes

/// Bytes waiting to go out on one connection, as a list of links for writev(2).
///
/// Headers and small bodies are copied into the queue's own buffer (so a small response is one
/// iovec, and a pipelined batch of them is still one); large owned chunks are referenced and
/// kept alive by their `ByteBuffer`; immortal chunks are referenced by address.
struct OutputQueue {
    struct Link {
        /// Owner of the bytes, or `nil` for immortal bytes at `base`.
        var owner: ByteBuffer?
        var base: UnsafeRawPointer?
        var offset: Int
        var count: Int
        /// For a file link: the file, sent with sendfile(2) from `offset`.
        var file: OpenFile? = nil

        @inline(__always)
        var start: UnsafeRawPointer {
            if let o = owner { return UnsafeRawPointer(o.base) + offset }
            return base! + offset
        }
    }

    /// Most bytes one sendfile call sends before the loop turns to its other connections (nginx's
    /// sendfile_max_chunk): a big download to a fast reader must not keep the loop for the
    /// whole socket buffer while small requests wait.
    static let sendfileChunk = 256 * 1024

    /// Owned chunks at least this long are referenced instead of copied.
    static let referenceThreshold = 2 * 1024

    var links: [Link] = []
    /// Index of the first link not yet fully written.
    var head = 0
    /// The queue's own buffer for headers and small bodies; made on first use.
    var own: ByteBuffer?
    /// Bytes queued and not yet written.
    private(set) var pending = 0

    var isEmpty: Bool { pending == 0 }

    /// Lets `body` append to the queue's own buffer; what it appends becomes (or extends) a link.
    @inline(__always)
    mutating func append(_ body: (ByteBuffer) -> Void) {
        let buf: ByteBuffer
        if let b = own { buf = b } else { buf = BufferPool.take(capacity: 4096); own = buf }
        let start = buf.count
        body(buf)
        let n = buf.count - start
        guard n > 0 else { return }
        pending += n
        if let last = links.indices.last, links[last].owner === buf, links[last].offset + links[last].count == start {
            links[last].count += n
        } else {
            links.append(Link(owner: buf, base: nil, offset: start, count: n))
        }
    }

    /// Queues a copy of `bytes`.
    mutating func append(copying bytes: UnsafeRawBufferPointer) {
        append { $0.append(bytes) }
    }

    /// Queues bytes that never die, by address.
    mutating func append(immortal bytes: UnsafeRawBufferPointer) {
        guard let b = bytes.baseAddress, bytes.count > 0 else { return }
        if bytes.count < Chunks.coalesceLimit {
            append(copying: bytes)
            return
        }
        links.append(Link(owner: nil, base: b, offset: 0, count: bytes.count))
        pending += bytes.count
    }

    /// Queues `count` bytes of `file` from `offset`, sent with sendfile(2).
    mutating func append(file: OpenFile, offset: Int, count: Int) {
        guard count > 0 else { return }
        links.append(Link(owner: nil, base: nil, offset: offset, count: count, file: file))
        pending += count
    }

    /// Queues a chain: small dynamic runs copied, large ones referenced.
    mutating func append(_ chunks: Chunks) {
        chunks.withLinks { storage, part in
            switch part {
            case .immortal(let p):
                append(immortal: p)
            case .shared(let shared):
                append(shared.buffer, 0..<shared.count)
            case .owned(let r):
                guard let s = storage else { return }
                append(s, r)
            }
        }
    }

    /// Queues `range` of `owner`: copied if short, else referenced (the buffer is kept alive
    /// until written).
    private mutating func append(_ owner: ByteBuffer, _ range: Range<Int>) {
        guard !range.isEmpty else { return }
        if range.count < OutputQueue.referenceThreshold {
            append(copying: UnsafeRawBufferPointer(rebasing: owner.bytes[range]))
        } else {
            links.append(Link(owner: owner, base: nil, offset: range.lowerBound, count: range.count))
            pending += range.count
        }
    }

    enum WriteResult {
        case done
        case wouldBlock
        case failed(Int32)
    }

    /// Writes as much as the socket takes: memory links with writev (`iovMax` per call), file
    /// links with sendfile.
    mutating func write(fd: Int32, iov: UnsafeMutablePointer<iovec>) -> WriteResult {
        while pending > 0 {
            if let file = links[head].file {
                var off = off_t(links[head].offset)
                let asked = min(links[head].count, OutputQueue.sendfileChunk)
                let w = sendfile(fd, file.fd, &off, asked)
                if w < 0 {
                    let e = errno
                    if e == EINTR { continue }
                    if e == EAGAIN || e == EWOULDBLOCK { return .wouldBlock }
                    return .failed(e)
                }
                if w == 0 { return .failed(EIO) }  // the file shrank under us
                let more = links[head].count > asked
                consume(w)
                // A short write: the socket is full. A whole chunk with more to come: let the
                // loop serve others first (it asks for writability and comes back).
                if w < asked || more { return .wouldBlock }
                continue
            }
            var n = 0
            var asked = 0
            var i = head
            while i < links.count && n < Int(NT_IOV_MAX) && links[i].file == nil {
                let l = links[i]
                iov[n] = iovec(iov_base: UnsafeMutableRawPointer(mutating: l.start), iov_len: l.count)
                asked += l.count
                n += 1
                i += 1
            }
            let w = writev(fd, iov, Int32(n))
            if w < 0 {
                let e = errno
                if e == EINTR { continue }
                if e == EAGAIN || e == EWOULDBLOCK { return .wouldBlock }
                return .failed(e)
            }
            consume(w)
            if w < asked { return .wouldBlock }
        }
        reset()
        return .done
    }

    /// Writes as much as the connection's TLS stream takes: the queue's first bytes (a record's
    /// worth, files read with pread) are copied into the stream's stage and encrypted from there.
    /// The bytes stay queued (and counted in `pending`) until OpenSSL has taken them.
    mutating func write(tls: TLSStream) -> WriteResult {
        while pending > 0 {
            if tls.staged == 0 {
                let stage = tls.stageBuffer()
                var n = 0
                var i = head
                var skip = 0
                while i < links.count && n < TLSStream.recordSize {
                    let l = links[i]
                    let count = min(l.count - skip, TLSStream.recordSize - n)
                    if let file = l.file {
                        let r = pread(file.fd, stage + n, count, off_t(l.offset + skip))
                        if r < 0 && errno == EINTR { continue }
                        if r <= 0 { return .failed(r == 0 ? EIO : errno) }  // 0: the file shrank under us
                        n += r
                        if r < count {
                            skip += r
                            continue
                        }
                    } else {
                        (stage + n).copyMemory(from: l.start + skip, byteCount: count)
                        n += count
                    }
                    if skip + count < l.count { break }  // the stage is full
                    skip = 0
                    i += 1
                }
                tls.staged = n
                tls.taken = 0
            }
            switch tls.writeStaged() {
            case .took(let n): consume(n)
            case .wouldBlock: return .wouldBlock
            case .failed: return .failed(ECONNRESET)
            }
        }
        reset()
        return .done
    }

    private mutating func consume(_ written: Int) {
        var left = written
        pending -= written
        while left > 0 {
            let c = links[head].count
            if left >= c {
                // Release a referenced body as soon as it is out; if nothing else holds its
                // buffer, it goes back to this thread's pool (a page rendered on this loop
                // reuses it, already grown to size).
                if var o = links[head].owner {
                    links[head].owner = nil
                    if o !== own && isKnownUniquelyReferenced(&o) { BufferPool.recycle(o) }
                }
                links[head].file = nil
                left -= c
                head += 1
            } else {
                links[head].offset += left
                links[head].count -= left
                left = 0
            }
        }
    }

    /// Forgets everything written. The queue's own buffer goes back to the thread's pool: an
    /// idle or parked connection then holds no output memory (docs/PERFORMANCE.md).
    private mutating func reset() {
        links.removeAll(keepingCapacity: links.capacity <= 64)
        head = 0
        pending = 0
        if var b = own {
            own = nil
            if isKnownUniquelyReferenced(&b) { BufferPool.recycle(b) }
        }
    }

    /// Drops everything (connection closed).
    mutating func discard() {
        links = []
        head = 0
        pending = 0
        own = nil
    }
}
