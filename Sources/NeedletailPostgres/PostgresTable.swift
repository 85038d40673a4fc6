import NeedletailStore

/// An indexed field of a record kept on PostgreSQL: a column of its own (named, since a key
/// path has no name), filled from the record on every write, with an index on it.
///
/// ```swift
/// let messages = try await PostgresTable.open(Message.self, on: db, indexes: [PostgresIndex("forum", \Message.forum)])
/// let inDebian = try await messages.lookup(\Message.forum, "Debian")
/// ```
public struct PostgresIndex<R: Record>: Sendable {
    /// The column's name: lower-case letters, digits and `_`, not `id` or `data`.
    public let column: String
    /// Whether two records may not share a value (a UNIQUE index: SQLSTATE 23505 otherwise).
    public let unique: Bool
    let keyPath: AnyKeyPath & Sendable
    let type: UInt32
    let value: @Sendable (R) -> any PostgresBindable

    public init<K: PostgresBindable & Hashable>(_ column: String, _ keyPath: KeyPath<R, K> & Sendable, unique: Bool = false) {
        self.column = column
        self.unique = unique
        self.keyPath = keyPath
        self.type = K.postgresType
        self.value = { $0[keyPath: keyPath] }
    }
}

/// Records of one type on PostgreSQL: the same `Record` types as the in-memory store, one
/// table per type (`nt_<typeName>`: `id bigserial`, `data bytea` holding the record's tagged
/// fields, and a column per `PostgresIndex`). The table is made on first use, under an
/// advisory lock so that backends starting together make it once, and registered in
/// `nt_schema` with its version and columns for later migrations. Every call is a query:
/// awaited, the loop serving others meanwhile. Writes take `in: tx` to join a transaction.
public final class PostgresTable<R: Record>: Sendable {
    /// The schema version this build writes and reads.
    public static var schemaVersion: Int { 1 }

    public let client: PostgresClient
    /// The SQL table's name (`nt_` and the record's `typeName`, lower case).
    public let name: String
    let indexes: [PostgresIndex<R>]
    private let columns: String
    private let insertSQL: String
    private let updateSQL: String

    private init(client: PostgresClient, name: String, indexes: [PostgresIndex<R>]) {
        self.client = client
        self.name = name
        self.indexes = indexes
        columns = indexes.map { "\($0.column) \(Self.sqlType($0.type) ?? "?")\($0.unique ? " unique" : "")" }.joined(separator: ", ")
        let names = (["data"] + indexes.map(\.column)).map { "\"\($0)\"" }
        insertSQL = "INSERT INTO \"\(name)\" (\(names.joined(separator: ", "))) VALUES (\((1...names.count).map { "$\($0)" }.joined(separator: ", "))) RETURNING id"
        updateSQL = "UPDATE \"\(name)\" SET " + names.enumerated().map { "\($1) = $\($0 + 2)" }.joined(separator: ", ") + " WHERE id = $1"
    }

    /// Opens the table of `R` on `client`, making it (and its indexes) if it is not there.
    /// Throws when the table was made by a newer schema version or with other indexed
    /// columns (a migration is needed: nothing is changed), or for a bad column name.
    public static func open(_ type: R.Type = R.self, on client: PostgresClient, indexes: [PostgresIndex<R>] = []) async throws -> PostgresTable<R> {
        let name = try tableName(R.typeName)
        var seen: Set<String> = []
        for index in indexes {
            guard isIdentifier(index.column), index.column != "id", index.column != "data", seen.insert(index.column).inserted else {
                throw PostgresError(.client, "bad indexed column name \"\(index.column)\" for \(R.typeName) (lower-case letters, digits and _, not id or data, each once)")
            }
            guard sqlType(index.type) != nil else {
                throw PostgresError(.client, "indexed column \(index.column) of \(R.typeName) has a type with no SQL column type (OID \(index.type))")
            }
        }
        let table = PostgresTable(client: client, name: name, indexes: indexes)
        var create = ["CREATE TABLE \"\(name)\" (id bigserial PRIMARY KEY, data bytea NOT NULL\(indexes.map { ", \"\($0.column)\" \(sqlType($0.type)!) NOT NULL" }.joined()))"]
        for index in indexes {
            // With id: lookups come back in id order straight from the index.
            create.append(
                "CREATE \(index.unique ? "UNIQUE " : "")INDEX \"\(name)_\(index.column)\" ON \"\(name)\" (\"\(index.column)\"\(index.unique ? "" : ", id"))")
        }
        try await client.makeSchema(name, version: schemaVersion, columns: table.columns, create: create)
        return table
    }

    // MARK: Writes

    /// Adds `record` and returns its id (ids increase; they are not reused).
    @discardableResult
    public func insert(_ record: R, in tx: PostgresTransaction? = nil) async throws -> Int {
        let rows = try await run(insertSQL, values(of: record), tx)
        return try rows.decode(0, 0, as: Int.self)
    }

    /// Replaces the record `id`; `StoreError.notFound` if there is none.
    public func update(_ id: Int, to record: R, in tx: PostgresTransaction? = nil) async throws {
        let changed = try await run(updateSQL, [id] + values(of: record), tx).affectedRows
        if changed == 0 { throw StoreError.notFound(id) }
    }

    /// Removes the record `id`; `StoreError.notFound` if there is none.
    public func delete(_ id: Int, in tx: PostgresTransaction? = nil) async throws {
        let changed = try await run("DELETE FROM \"\(name)\" WHERE id = $1", [id], tx).affectedRows
        if changed == 0 { throw StoreError.notFound(id) }
    }

    // MARK: Reads

    /// The record `id`, if any.
    public func get(_ id: Int, in tx: PostgresTransaction? = nil) async throws -> R? {
        try await records(run("SELECT id, data FROM \"\(name)\" WHERE id = $1", [id], tx)).first?.record
    }

    /// Number of records.
    public func count(in tx: PostgresTransaction? = nil) async throws -> Int {
        try await run("SELECT count(*) FROM \"\(name)\"", [], tx).decode(0, 0, as: Int.self)
    }

    /// Every record, oldest first.
    public func all(in tx: PostgresTransaction? = nil) async throws -> [(id: Int, record: R)] {
        try await records(run("SELECT id, data FROM \"\(name)\" ORDER BY id", [], tx))
    }

    /// The records whose indexed field `keyPath` equals `value`, newest first unless asked.
    public func lookup<K: PostgresBindable & Hashable>(
        _ keyPath: KeyPath<R, K> & Sendable, _ value: K, newestFirst: Bool = true, limit: Int? = nil, in tx: PostgresTransaction? = nil
    ) async throws -> [(id: Int, record: R)] {
        let column = try self.column(for: keyPath)
        let sql = "SELECT id, data FROM \"\(name)\" WHERE \"\(column)\" = $1 ORDER BY id\(newestFirst ? " DESC" : "")" + (limit.map { " LIMIT \(max(0, $0))" } ?? "")
        return try await records(run(sql, [value], tx))
    }

    /// The one record whose indexed field equals `value`, if any; `StoreError.notUnique` if
    /// several do.
    public func unique<K: PostgresBindable & Hashable>(
        _ keyPath: KeyPath<R, K> & Sendable, _ value: K, in tx: PostgresTransaction? = nil
    ) async throws -> (id: Int, record: R)? {
        let found = try await lookup(keyPath, value, limit: 2, in: tx)
        if found.count > 1 { throw StoreError.notUnique }
        return found.first
    }

    // MARK: Inside

    private func run(_ sql: String, _ parameters: [any PostgresBindable], _ tx: PostgresTransaction?) async throws(PostgresError) -> PostgresRows {
        if let tx { return try await tx.query(sql, parameters) }
        return try await client.query(sql, parameters)
    }

    private func values(of record: R) -> [any PostgresBindable] {
        [record.encodedFields] + indexes.map { $0.value(record) }
    }

    private func records(_ rows: PostgresRows) throws -> [(id: Int, record: R)] {
        var out: [(id: Int, record: R)] = []
        out.reserveCapacity(rows.count)
        for i in 0..<rows.count {
            let id = try rows.decode(i, 0, as: Int.self)
            do {
                out.append((id, try R(encodedFields: rows.decode(i, 1, as: [UInt8].self))))
            } catch let error as StoreError {
                throw StoreError.corrupt("\(name) id \(id): \(error)")
            }
        }
        return out
    }

    private func column(for keyPath: AnyKeyPath) throws(PostgresError) -> String {
        guard let index = indexes.first(where: { $0.keyPath == keyPath }) else {
            throw PostgresError(.client, "\(name) has no index on that field (open it with a PostgresIndex for it)")
        }
        return index.column
    }

    static func tableName(_ typeName: String) throws(PostgresError) -> String {
        let mapped = String(typeName.lowercased().map { c -> Character in
            (c.isASCII && (c.isLetter || c.isNumber)) ? c : "_"
        })
        let name = "nt_" + mapped
        guard !mapped.isEmpty, name.utf8.count <= 48 else {
            throw PostgresError(.client, "record type name \"\(typeName)\" makes no table name (1 to 45 characters)")
        }
        return name
    }

    static func isIdentifier(_ s: String) -> Bool {
        guard let first = s.utf8.first, s.utf8.count <= 40, first == UInt8(ascii: "_") || (first >= 97 && first <= 122) else { return false }
        return s.utf8.allSatisfy { $0 == UInt8(ascii: "_") || ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) }
    }

    static func sqlType(_ oid: UInt32) -> String? {
        switch oid {
        case PostgresType.bool: return "boolean"
        case PostgresType.bytea: return "bytea"
        case PostgresType.int8: return "bigint"
        case PostgresType.int4: return "integer"
        case PostgresType.text: return "text"
        case PostgresType.float8: return "double precision"
        default: return nil
        }
    }
}

extension PostgresClient {
    /// Makes the tables of one of Needletail's schemas (`create`, run in one transaction) unless
    /// `nt_schema` says they are there, at `version`, with these `columns`. Throws, changing
    /// nothing, when they were made by a newer version, or at this version with other columns
    /// (a migration is needed). Backends that start together take turns (an advisory lock).
    ///
    /// A table found at an older version is brought up to `version` by `upgrade[v]` for each
    /// version `v` after the one found (its statements run in the same transaction, under the
    /// same lock, so one backend upgrades and the others find it done); a step missing from
    /// `upgrade` is an error naming both versions.
    public func makeSchema(_ name: String, version: Int, columns: String, create: [String], upgrade: [Int: [String]] = [:])
        async throws
    {
        try await transaction { tx in
            // One lock for all of Needletail's schema work: concurrent CREATE TABLE IF NOT
            // EXISTS can still collide in the catalogs.
            try await tx.execute("SELECT pg_advisory_xact_lock(7418235)")
            try await tx.execute(
                "CREATE TABLE IF NOT EXISTS nt_schema (name text PRIMARY KEY, version integer NOT NULL, columns text NOT NULL)")
            let found = try await tx.query("SELECT version, columns FROM nt_schema WHERE name = $1", [name])
            if found.count == 1 {
                let had = try found.decode(0, 0, as: Int.self)
                let hadColumns = try found.decode(0, 1, as: String.self)
                guard had <= version else {
                    throw PostgresError(.client, "table \(name) has schema version \(had); this build knows up to \(version): upgrade the app")
                }
                if had < version {
                    for step in (had + 1)...version {
                        guard let statements = upgrade[step] else {
                            throw PostgresError(.client, "table \(name) has schema version \(had); this build knows no way to version \(step)")
                        }
                        for statement in statements { try await tx.execute(statement) }
                    }
                    try await tx.execute("UPDATE nt_schema SET version = $2, columns = $3 WHERE name = $1", [name, version, columns])
                    return
                }
                guard hadColumns == columns else {
                    throw PostgresError(.client, "table \(name) has the columns (\(hadColumns)); the app asks for (\(columns)): a migration is needed")
                }
                return
            }
            for statement in create { try await tx.execute(statement) }
            try await tx.execute("INSERT INTO nt_schema (name, version, columns) VALUES ($1, $2, $3)", [name, version, columns])
        }
    }
}
