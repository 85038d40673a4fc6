import CPostgres

/// The rows a statement returned (text format), read in place from libpq's result, which
/// this object owns and frees. Immutable: safe to pass between tasks.
public final class PostgresRows: @unchecked Sendable {
    private let result: OpaquePointer?

    init(_ result: OpaquePointer?) { self.result = result }
    deinit { if let result { PQclear(result) } }

    /// Number of rows.
    public var count: Int { result.map { Int(PQntuples($0)) } ?? 0 }
    /// Number of columns.
    public var columnCount: Int { result.map { Int(PQnfields($0)) } ?? 0 }
    /// The rows a command changed (`INSERT`, `UPDATE`, `DELETE`), 0 for others.
    public var affectedRows: Int {
        guard let result, let s = PQcmdTuples(result) else { return 0 }
        return Int(String(cString: s)) ?? 0
    }

    /// The column's index by name, `nil` if the result has no such column.
    public func column(named name: String) -> Int? {
        guard let result else { return nil }
        let i = Int(PQfnumber(result, name))
        return i >= 0 ? i : nil
    }

    /// Row `row`'s column `column` as text; `nil` for SQL NULL or out of range.
    public func text(_ row: Int, _ column: Int) -> String? {
        guard let result, row >= 0, row < count, column >= 0, column < columnCount,
            PQgetisnull(result, Int32(row), Int32(column)) == 0, let v = PQgetvalue(result, Int32(row), Int32(column))
        else { return nil }
        return String(cString: v)
    }

    /// Row `row`'s column `column` decoded as `T`; throws when it is NULL or not a `T`.
    public func decode<T: PostgresDecodable>(_ row: Int, _ column: Int, as type: T.Type = T.self) throws(PostgresError) -> T {
        guard let text = text(row, column) else {
            throw PostgresError(.client, "row \(row) column \(column) is NULL or missing (expected \(T.self))")
        }
        guard let value = T(postgresText: text) else {
            throw PostgresError(.client, "row \(row) column \(column) is not a \(T.self): \(text.prefix(40))")
        }
        return value
    }

    /// Row `row`'s column `column` decoded as `T`, `nil` for SQL NULL.
    public func decodeIfPresent<T: PostgresDecodable>(_ row: Int, _ column: Int, as type: T.Type = T.self) throws(PostgresError) -> T? {
        guard text(row, column) != nil else { return nil }
        return try decode(row, column, as: T.self)
    }
}
