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
    case int = 1, string, bytes, double, bool
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

/// Reads the tagged fields of one record. Missing fields get the default given; a field of the
/// wrong kind is an error naming the tag.
public struct RecordReader {
    private var fields: [UInt8: (kind: FieldKind, range: Range<Int>)] = [:]
    private let bytes: [UInt8]

    init(_ bytes: [UInt8]) throws(StoreError) {
        self.bytes = bytes
        var i = 0
        func need(_ n: Int) throws(StoreError) {
            if i + n > bytes.count { throw StoreError.corrupt("record field runs past its end") }
        }
        while i < bytes.count {
            try need(2)
            let tag = bytes[i]
            guard let kind = FieldKind(rawValue: bytes[i + 1]) else { throw StoreError.corrupt("unknown field kind \(bytes[i + 1])") }
            i += 2
            let start: Int
            switch kind {
            case .int, .double:
                try need(8)
                start = i
                i += 8
            case .bool:
                try need(1)
                start = i
                i += 1
            case .string, .bytes:
                try need(4)
                let n = Int(readLE(UInt32.self, bytes, i))
                i += 4
                try need(n)
                start = i
                i += n
            }
            fields[tag] = (kind, start..<i)
        }
    }

    private func field(_ tag: UInt8, _ kind: FieldKind) throws(StoreError) -> Range<Int>? {
        guard let f = fields[tag] else { return nil }
        guard f.kind == kind else { throw StoreError.corrupt("field \(tag) has kind \(f.kind), expected \(kind)") }
        return f.range
    }

    public func int(_ tag: UInt8, default value: Int? = nil) throws(StoreError) -> Int {
        guard let r = try field(tag, .int) else { return try missing(tag, value) }
        return Int(Int64(bitPattern: readLE(UInt64.self, bytes, r.lowerBound)))
    }

    public func string(_ tag: UInt8, default value: String? = nil) throws(StoreError) -> String {
        guard let r = try field(tag, .string) else { return try missing(tag, value) }
        return String(decoding: bytes[r], as: UTF8.self)
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

func readLE<T: FixedWidthInteger>(_: T.Type, _ bytes: [UInt8], _ at: Int) -> T {
    var v: T = 0
    withUnsafeMutableBytes(of: &v) { dst in
        for i in 0..<MemoryLayout<T>.size { dst[i] = bytes[at + i] }
    }
    return T(littleEndian: v)
}
