import Glibc

/// Entry points for the fuzzer (`needletail-fuzz`, docs/SECURITY.md) and for the tests that
/// replay its corpus and the crashes it found. Not API: reached only with `@_spi(Fuzzing)`.
@_spi(Fuzzing) public enum StoreFuzzing {
    /// Writes a log file made from `data` at `path`, opens it as a store, reads every sample
    /// record through an index, and checks what it can: opening either fails with a `StoreError`
    /// or loads records that survive compaction and a reopen unchanged.
    ///
    /// The first byte picks the shape: bit 0 set, the rest is a list of entries (a 2-byte length
    /// and a payload each) framed with correct lengths and checksums, so that mutations reach
    /// the entry decoder; clear, the rest is the file after a valid header (bit 1 clear) or the
    /// whole file (bit 1 set). Bit 2 opens with `repair`. `record` is the type read back (the
    /// corpus holds `SampleRecord`s, of the test-support target), `key` its indexed field.
    public static func logReader<R: Record & Equatable>(
        _ data: UnsafeRawBufferPointer, path: String, record: R.Type,
        key: KeyPath<R, Int> & Sendable
    ) -> Int {
        guard let selector = data.first else { return 0 }
        let rest = Array(data.dropFirst())
        var file: [UInt8] = []
        if selector & 2 == 0 || selector & 1 == 1 {
            file = LogFile.magic
            withUnsafeBytes(of: LogFile.version.littleEndian) { file += $0 }
            file += [0, 0, 0, 0]
        }
        if selector & 1 == 1 {
            var i = 0
            while i + 2 <= rest.count {
                let n = min(Int(rest[i]) | Int(rest[i + 1]) << 8, rest.count - i - 2)
                let payload = Array(rest[(i + 2)..<(i + 2 + n)])
                withUnsafeBytes(of: UInt32(n).littleEndian) { file += $0 }
                withUnsafeBytes(of: CRC32C.checksum(payload).littleEndian) { file += $0 }
                file += payload
                i += 2 + n
            }
        } else {
            file += rest
        }
        unlink(path)
        unlink(path + ".compact")
        defer {
            unlink(path)
            unlink(path + ".compact")
        }
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return 0 }
        let written = file.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        guard written == file.count else { return 0 }

        func load() throws(StoreError) -> [Int: R] {
            let store = try Store(path: path, fsync: .never, repair: selector & 4 != 0, lockTimeout: 0)
            defer { store.close() }
            let table = try store.table(R.self, indexes: [Index(key)])
            var seen: [Int: R] = [:]
            for (id, record) in table.all() {
                seen[id] = record
                precondition(table.lookup(key, record[keyPath: key]).contains { $0.id == id }, "index lost record \(id)")
            }
            precondition(seen.count == table.count, "count disagrees with all()")
            _ = try store.compact()
            return seen
        }
        guard let first = try? load() else { return 0 }
        // What loaded must load again, unchanged, from the compacted log.
        do {
            let again = try load()
            precondition(again == first, "records changed after compaction and reopening")
        } catch {
            preconditionFailure("a compacted log failed to open: \(error)")
        }
        return first.count
    }
}
