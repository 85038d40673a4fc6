import NeedletailStore

/// A record with an integer key and a text: what `needletail-store torture` and `fill` write,
/// what the crash tests read back, and what the store benchmark measures. One definition, so
/// that the writer and the checker can never disagree about the fields.
public struct SampleRecord: Record, Equatable {
    public static let typeName = "sample"
    public var key: Int
    public var text: String

    public init(key: Int, text: String) {
        self.key = key
        self.text = text
    }

    public func encode(to w: inout RecordWriter) {
        w.write(1, key)
        w.write(2, text)
    }

    public init(from r: RecordReader) throws(StoreError) {
        key = try r.int(1)
        text = try r.string(2)
    }
}
