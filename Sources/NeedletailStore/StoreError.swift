/// What can go wrong with a store, said plainly.
public enum StoreError: Error, Equatable, CustomStringConvertible {
    /// A system call failed (disk full, permissions…); the store is unchanged.
    case io(String)
    /// Bytes that do not decode: a bad header, a bad record field.
    case corrupt(String)
    /// An entry with a bad checksum or length in the middle of the log, at this byte offset.
    /// Nothing after it is trusted; reopen with `repair: true` to keep what precedes it.
    case damaged(offset: Int, reason: String)
    /// Another process holds the store's lock.
    case locked(String)
    /// No record with this id.
    case notFound(Int)
    /// A unique lookup found several records.
    case notUnique

    public var description: String {
        switch self {
        case .io(let m): return "store I/O error: \(m)"
        case .corrupt(let m): return "store data corrupt: \(m)"
        case .damaged(let offset, let reason):
            return "store log damaged at byte \(offset) (\(reason)); open with repair to keep the entries before it"
        case .locked(let m): return "store locked: \(m)"
        case .notFound(let id): return "no record with id \(id)"
        case .notUnique: return "more than one record matches a unique lookup"
        }
    }
}
