import Glibc

/// The append-only log of a store (format: docs/STORE-FORMAT.md). Owns the file descriptor and
/// its lock; appends entries; reads them back on open, cutting a torn tail.
final class LogFile {
    static let magic: [UInt8] = Array("NTLSTORE".utf8)
    static let version: UInt32 = 1
    static let headerLength = 16
    static let entryHeaderLength = 8
    /// Entries larger than this are refused on write and treated as damage on read.
    static let maxEntry = 256 << 20

    let path: String
    private(set) var fd: Int32
    /// Bytes in the file that belong to whole, valid entries (where the next append goes).
    private(set) var length: Int
    /// Bytes in the file: the entries, then zeros written ahead of time (docs/STORE-FORMAT.md):
    /// an append into space already written and sized lets fdatasync skip the file's metadata
    /// (about a third faster per sync on ext4), and a full disk shows when space is reserved.
    private(set) var capacity: Int
    /// How much zeroed space is reserved at a time.
    static let reserveChunk = 1 << 20

    /// What opening found.
    struct Recovery: Equatable {
        var entries = 0
        var cutBytes = 0
        var cutAt: Int?
    }

    /// Opens (creating if needed) and locks the log, and returns every valid entry's payload.
    init(path: String, repair: Bool, lockTimeout: Double, onEntry: ([UInt8]) throws(StoreError) -> Void) throws(StoreError) {
        self.path = path
        let created = access(path, F_OK) != 0
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .io("open \(path): \(String(cString: strerror(errno)))") }
        length = 0
        capacity = 0
        var ok = false
        // close(), not Glibc.close: once every field is set a throw also runs deinit, and a
        // second close(2) of the number would close whatever another thread opened since.
        defer { if !ok { close() } }
        try LogFile.lock(fd, path: path, timeout: lockTimeout)
        if created || fileSize() == 0 {
            var header = LogFile.magic
            withUnsafeBytes(of: LogFile.version.littleEndian) { header += $0 }
            header += [0, 0, 0, 0]
            try write(header, at: 0)
            try sync()
            LogFile.syncDirectory(of: path)
            length = LogFile.headerLength
            capacity = length
        } else {
            recovery = try replay(repair: repair, onEntry: onEntry)
        }
        ok = true
    }

    private(set) var recovery = Recovery()

    private var isClosed = false

    /// Closes the file, which releases the lock. Idempotent.
    func close() {
        guard !isClosed else { return }
        isClosed = true
        Glibc.close(fd)
    }

    deinit { close() }

    /// Releases the lock, keeping the file open (a live upgrade hands the log over).
    func unlock() { _ = flock(fd, LOCK_UN) }

    /// Takes the lock back, if the file at `path` is still this one, unchanged since `unlock`
    /// (`size` bytes long then): false if another process holds it or changed it.
    func relock(expectingSize size: Int) -> Bool {
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else { return false }
        var mine = stat(), there = stat()
        guard fstat(fd, &mine) == 0, stat(path, &there) == 0, mine.st_ino == there.st_ino, mine.st_dev == there.st_dev,
            Int(mine.st_size) == size
        else {
            unlock()
            return false
        }
        return true
    }

    /// The file's size now.
    var size: Int { fileSize() }

    private static func lock(_ fd: Int32, path: String, timeout: Double) throws(StoreError) {
        var waited = 0.0
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK, waited < timeout else {
                throw .locked("\(path) is in use by another process")
            }
            usleep(10_000)
            waited += 0.01
        }
    }

    private func fileSize() -> Int {
        var st = stat()
        fstat(fd, &st)
        return Int(st.st_size)
    }

    private func replay(repair: Bool, onEntry: ([UInt8]) throws(StoreError) -> Void) throws(StoreError) -> Recovery {
        let size = fileSize()
        var data = [UInt8](repeating: 0, count: size)
        var got = 0
        while got < size {
            let n = data.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + got, size - got, off_t(got)) }
            guard n > 0 else { throw .io("read \(path): \(String(cString: strerror(errno)))") }
            got += n
        }
        guard size >= LogFile.headerLength, Array(data[0..<8]) == LogFile.magic else {
            throw .corrupt("\(path) is not a Needletail store log (bad magic)")
        }
        let version = readLE(UInt32.self, data, 8)
        guard version == LogFile.version else {
            throw .corrupt("\(path) has log format version \(version); this build reads \(LogFile.version)")
        }
        var r = Recovery()
        var offset = LogFile.headerLength
        // Where the non-zero bytes end: past it is space reserved for appends.
        var used = size
        while used > offset && data[used - 1] == 0 { used -= 1 }
        while offset < size {
            let left = size - offset
            var problem: String?
            var payloadLength = 0
            if offset >= used {
                break  // the reserved zeros: the log ends here
            } else if left < LogFile.entryHeaderLength {
                problem = "incomplete entry header"
            } else if readLE(UInt64.self, data, offset) == 0 {
                problem = "entry header of zeros"  // a write torn before its header reached the disk
            } else {
                payloadLength = Int(readLE(UInt32.self, data, offset))
                let crc = readLE(UInt32.self, data, offset + 4)
                if payloadLength > LogFile.maxEntry || payloadLength > left - LogFile.entryHeaderLength {
                    problem = "entry length \(payloadLength) runs past the end"
                } else {
                    let start = offset + LogFile.entryHeaderLength
                    let computed = data.withUnsafeBytes {
                        CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[start..<(start + payloadLength)]))
                    }
                    if computed != crc { problem = "checksum mismatch" }
                }
            }
            if let p = problem {
                // A bad checksum is a torn last write if nothing but reserved zeros follows it.
                let isTail = p != "checksum mismatch" || offset + LogFile.entryHeaderLength + payloadLength >= used
                if !isTail && !repair { throw .damaged(offset: offset, reason: p) }
                // A torn last entry (a write cut by a crash), or damage the caller chose to cut.
                r.cutAt = offset
                // What was cut: the torn entry as far as its header claimed, or up to the
                // reserved zeros (all of a header cut short at the end of the file).
                let claimedEnd = p == "incomplete entry header" ? size : min(size, offset + LogFile.entryHeaderLength + payloadLength)
                r.cutBytes = max(used, claimedEnd) - offset
                guard ftruncate(fd, off_t(offset)) == 0 else { throw .io("truncate \(path): \(String(cString: strerror(errno)))") }
                try sync()
                break
            }
            let start = offset + LogFile.entryHeaderLength
            try onEntry(Array(data[start..<(start + payloadLength)]))
            r.entries += 1
            offset = start + payloadLength
        }
        length = r.cutAt ?? min(offset, size)
        capacity = r.cutAt ?? size
        return r
    }

    /// Fills in the header (length, CRC32C) of an entry whose payload follows
    /// `entryHeaderLength` reserved bytes (as `Operation.entry` leaves them). Needs no lock.
    static func seal(_ entry: inout [UInt8]) throws(StoreError) {
        let count = entry.count - entryHeaderLength
        guard count <= maxEntry else { throw .io("entry of \(count) bytes is larger than \(maxEntry)") }
        let crc = entry.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[entryHeaderLength...])) }
        entry.withUnsafeMutableBytes { b in
            b.storeBytes(of: UInt32(count).littleEndian, toByteOffset: 0, as: UInt32.self)
            b.storeBytes(of: crc.littleEndian, toByteOffset: 4, as: UInt32.self)
        }
    }

    /// Appends one sealed entry in one write. On failure the file is cut back to where it was,
    /// so a half-written entry never stays.
    func append(_ entry: [UInt8]) throws(StoreError) {
        let at = try claim(entry.count)
        do {
            try write(entry, at: at)
        } catch {
            length = at
            // Never leave part of an entry: zero it again, or failing that cut the file there.
            if (try? write([UInt8](repeating: 0, count: entry.count), at: at)) == nil {
                _ = ftruncate(fd, off_t(at))
                capacity = at
            }
            throw error
        }
    }

    /// Takes the next `count` bytes of the log for an entry that will be written later (by the
    /// sync thread, with the entries around it, `write(_:at:)`), reserving space as needed;
    /// returns where the entry goes.
    func claim(_ count: Int) throws(StoreError) -> Int {
        let at = length
        if at + count > capacity { try reserve(upTo: at + count) }
        length = at + count
        return at
    }

    /// Writes zeros from `capacity` to at least `end` (a chunk at a time; just to `end` when a
    /// chunk does not fit on the disk). On failure the file is cut back to what it was.
    private func reserve(upTo end: Int) throws(StoreError) {
        let chunk = max(end, capacity + LogFile.reserveChunk)
        for target in [chunk, end] {
            do {
                try write([UInt8](repeating: 0, count: target - capacity), at: capacity)
                capacity = target
                return
            } catch {
                _ = ftruncate(fd, off_t(capacity))
                if target == end { throw error }
            }
        }
    }

    /// Writes `bytes` at `offset`, all of them. The sync thread calls it for entries already
    /// claimed (`claim`) while appends claim space after them: it touches only the descriptor,
    /// which only compaction replaces, with syncs paused.
    func write(_ bytes: [UInt8], at offset: Int) throws(StoreError) {
        try LogFile.write(bytes, at: offset, to: fd, name: path)
    }

    /// pwrite until all of `bytes` is written at `offset` of `fd` (the log, or the compacted
    /// file being made); `name` is for the error.
    static func write(_ bytes: [UInt8], at offset: Int, to fd: Int32, name: String) throws(StoreError) {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress! + done, bytes.count - done, off_t(offset + done)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw .io("write \(name): \(n == 0 ? "no progress" : String(cString: strerror(errno)))") }
            done += n
        }
    }

    /// Writes a new log at `path + ".compact"` holding `entries` (sealed), synced; returns its
    /// length. The caller then copies the tail and calls `replace(with:)`.
    static func writeCompacted(path: String, entries: [[UInt8]]) throws(StoreError) -> (fd: Int32, length: Int) {
        let tmp = path + ".compact"
        let fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .io("open \(tmp): \(String(cString: strerror(errno)))") }
        var bytes = magic
        withUnsafeBytes(of: version.littleEndian) { bytes += $0 }
        bytes += [0, 0, 0, 0]
        for entry in entries { bytes += entry }
        do {
            try write(bytes, at: 0, to: fd, name: tmp)
        } catch {
            Glibc.close(fd)
            unlink(tmp)
            throw error
        }
        return (fd, bytes.count)
    }

    /// Appends the bytes of this log from `offset` to its end onto `fd` (at `at`); returns the
    /// new length there.
    func copyTail(from offset: Int, to fd: Int32, at: Int) throws(StoreError) -> Int {
        let n = length - offset
        guard n > 0 else { return at }
        var buf = [UInt8](repeating: 0, count: n)
        var got = 0
        while got < n {
            let r = buf.withUnsafeMutableBytes { pread(self.fd, $0.baseAddress! + got, n - got, off_t(offset + got)) }
            guard r > 0 else { throw .io("read \(path): \(String(cString: strerror(errno)))") }
            got += r
        }
        try LogFile.write(buf, at: at, to: fd, name: path + ".compact")
        return at + n
    }

    /// Makes the compacted file the log: sync it, lock it, rename it over the old one, sync the
    /// directory, and drop the old descriptor.
    func replace(with newFD: Int32, length newLength: Int) throws(StoreError) {
        let tmp = path + ".compact"
        guard fdatasync(newFD) == 0 else { throw .io("fdatasync \(tmp): \(String(cString: strerror(errno)))") }
        guard flock(newFD, LOCK_EX | LOCK_NB) == 0 else { throw .locked("\(tmp) is locked") }
        guard rename(tmp, path) == 0 else { throw .io("rename \(tmp): \(String(cString: strerror(errno)))") }
        LogFile.syncDirectory(of: path)
        Glibc.close(fd)
        fd = newFD
        length = newLength
        capacity = newLength
    }

    /// fdatasync: the appended bytes and the file's size are on disk when it returns.
    func sync() throws(StoreError) {
        guard fdatasync(fd) == 0 else { throw .io("fdatasync \(path): \(String(cString: strerror(errno)))") }
    }

    /// fsync of the directory, so that a newly created (or renamed) file's name is durable.
    static func syncDirectory(of path: String) {
        let dir = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        let d = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if d >= 0 {
            fsync(d)
            Glibc.close(d)
        }
    }
}
