/// How a record type writes itself into the log and reads itself back: tagged fields, so that
/// a field added later (read with a default) still loads old logs, and a removed field is
/// skipped. Not a general decoder: each record type says which fields it has.
///
/// ```swift
/// struct Message: Record {
///     static let typeName = "message"
///     var forum: String, text: String, author: String, time: Int
///     func encode(to w: inout RecordWriter) {
///         w.write(1, forum); w.write(2, text); w.write(3, author); w.write(4, time)
///     }
///     init(from r: RecordReader) throws {
///         forum = try r.string(1); text = try r.string(2); author = try r.string(3); time = try r.int(4)
///     }
/// }
/// ```
public protocol Record: Sendable {
    /// The name the log stores for this type (keep it stable).
    static var typeName: String { get }
    /// Writes the fields.
    func encode(to writer: inout RecordWriter)
    /// Reads the fields back.
    init(from reader: RecordReader) throws(StoreError)
}

/// Field wire types.
enum FieldKind: UInt8 {
    case int = 1
    case string, bytes, double, bool
}

/// Writes tagged fields: tag (u8), kind (u8), value (int: 8 bytes LE; string/bytes: u32 length
/// + bytes; double: 8 bytes; bool: 1 byte).
public struct RecordWriter {
    var bytes: [UInt8] = []

    public mutating func write(_ tag: UInt8, _ value: Int) {
        bytes += [tag, FieldKind.int.rawValue]
        appendLE(UInt64(bitPattern: Int64(value)))
    }

    public mutating func write(_ tag: UInt8, _ value: String) {
        bytes += [tag, FieldKind.string.rawValue]
        appendLE(UInt32(value.utf8.count))
        bytes += value.utf8
    }

    public mutating func write(_ tag: UInt8, _ value: [UInt8]) {
        bytes += [tag, FieldKind.bytes.rawValue]
        appendLE(UInt32(value.count))
        bytes += value
    }

    public mutating func write(_ tag: UInt8, _ value: Double) {
        bytes += [tag, FieldKind.double.rawValue]
        appendLE(value.bitPattern)
    }

    public mutating func write(_ tag: UInt8, _ value: Bool) {
        bytes += [tag, FieldKind.bool.rawValue, value ? 1 : 0]
    }

    mutating func appendLE<T: FixedWidthInteger>(_ v: T) {
        withUnsafeBytes(of: v.littleEndian) { bytes += $0 }
    }
}

/// A record's field bytes: a range of a larger array (a log entry read at open, or an encoded
/// record), so that replaying a log copies no record.
public struct RecordBytes: Sendable {
    let storage: [UInt8]
    let range: Range<Int>

    init(_ bytes: [UInt8]) {
        storage = bytes
        range = 0..<bytes.count
    }

    init(storage: [UInt8], range: Range<Int>) {
        self.storage = storage
        self.range = range
    }

    var count: Int { range.count }
}

/// Reads the tagged fields of one record. Missing fields get the default given; a field of the
/// wrong kind, or bytes that do not parse, are errors naming the tag. Fields are found by
/// scanning (records have a handful), so reading builds no table.
public struct RecordReader {
    private let bytes: [UInt8]
    private let range: Range<Int>

    init(_ record: RecordBytes) {
        bytes = record.storage
        range = record.range
    }

    /// The kind and value range of field `tag`, or nil.
    private func field(_ tag: UInt8, _ expected: FieldKind) throws(StoreError) -> Range<Int>? {
        var i = range.lowerBound
        let end = range.upperBound
        while i < end {
            guard i + 2 <= end else { throw StoreError.corrupt("record field runs past its end") }
            let t = bytes[i]
            guard let kind = FieldKind(rawValue: bytes[i + 1]) else { throw StoreError.corrupt("unknown field kind \(bytes[i + 1])") }
            i += 2
            let length: Int
            switch kind {
            case .int, .double: length = 8
            case .bool: length = 1
            case .string, .bytes:
                guard i + 4 <= end else { throw StoreError.corrupt("record field runs past its end") }
                length = Int(readLE(UInt32.self, bytes, i))
                i += 4
            }
            guard i + length <= end else { throw StoreError.corrupt("record field runs past its end") }
            if t == tag {
                guard kind == expected else { throw StoreError.corrupt("field \(tag) has kind \(kind), expected \(expected)") }
                return i..<(i + length)
            }
            i += length
        }
        return nil
    }

    public func int(_ tag: UInt8, default value: Int? = nil) throws(StoreError) -> Int {
        guard let r = try field(tag, .int) else { return try missing(tag, value) }
        return Int(Int64(bitPattern: readLE(UInt64.self, bytes, r.lowerBound)))
    }

    public func string(_ tag: UInt8, default value: String? = nil) throws(StoreError) -> String {
        guard let r = try field(tag, .string) else { return try missing(tag, value) }
        return bytes.withUnsafeBufferPointer { String(decoding: UnsafeBufferPointer(rebasing: $0[r]), as: UTF8.self) }
    }

    public func bytes(_ tag: UInt8, default value: [UInt8]? = nil) throws(StoreError) -> [UInt8] {
        guard let r = try field(tag, .bytes) else { return try missing(tag, value) }
        return Array(bytes[r])
    }

    public func double(_ tag: UInt8, default value: Double? = nil) throws(StoreError) -> Double {
        guard let r = try field(tag, .double) else { return try missing(tag, value) }
        return Double(bitPattern: readLE(UInt64.self, bytes, r.lowerBound))
    }

    public func bool(_ tag: UInt8, default value: Bool? = nil) throws(StoreError) -> Bool {
        guard let r = try field(tag, .bool) else { return try missing(tag, value) }
        return bytes[r.lowerBound] != 0
    }

    private func missing<T>(_ tag: UInt8, _ value: T?) throws(StoreError) -> T {
        guard let v = value else { throw StoreError.corrupt("required field \(tag) missing") }
        return v
    }
}

@inline(__always)
func readLE<T: FixedWidthInteger>(_: T.Type, _ bytes: [UInt8], _ at: Int) -> T {
    bytes.withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: at, as: T.self)) }
}

extension Record {
    /// The record's fields in the store's tagged format: what a log entry holds, and what a
    /// record table on PostgreSQL keeps in its `data` column.
    public var encodedFields: [UInt8] {
        var writer = RecordWriter()
        encode(to: &writer)
        return writer.bytes
    }

    /// The record read back from `encodedFields`; throws `StoreError.corrupt` naming the field
    /// that does not decode.
    public init(encodedFields bytes: [UInt8]) throws(StoreError) {
        try self.init(from: RecordReader(RecordBytes(bytes)))
    }
}
