import Foundation
import Needletail
import NeedletailCluster
import NeedletailPostgres
import NeedletailTestSupport
import XCTest

struct Post: Record, Equatable {
    static let typeName = "post"
    var forum: String
    var author: String
    var text: String
    func encode(to w: inout RecordWriter) {
        w.write(1, forum)
        w.write(2, author)
        w.write(3, text)
    }
    init(from r: RecordReader) throws(StoreError) {
        forum = try r.string(1)
        author = try r.string(2)
        text = try r.string(3)
    }
    init(forum: String, author: String, text: String) {
        self.forum = forum
        self.author = author
        self.text = text
    }
}

struct Member: Record, Equatable {
    static let typeName = "member"
    var email: String
    func encode(to w: inout RecordWriter) { w.write(1, email) }
    init(from r: RecordReader) throws(StoreError) { email = try r.string(1) }
    init(email: String) { self.email = email }
}

/// Records on PostgreSQL, against a real server.
final class PostgresTableTests: PostgresServerTestCase {
    /// Each test starts without the tables the others made.
    override func setUp() async throws {
        try database().psql("DROP TABLE IF EXISTS nt_post, nt_member, nt_schema, nt_channel")
    }

    private let byForum = PostgresIndex("forum", \Post.forum)

    func testWritesReadsAndLookupsByIndex() async throws {
        let db = try client()
        defer { db.close() }
        let posts = try await PostgresTable.open(Post.self, on: db, indexes: [byForum])
        XCTAssertEqual(posts.name, "nt_post")
        let a = try await posts.insert(Post(forum: "debian", author: "ada", text: "first"))
        let b = try await posts.insert(Post(forum: "swift", author: "bob", text: "second"))
        let c = try await posts.insert(Post(forum: "debian", author: "cy", text: "third 'quoted' \u{1F600}"))
        XCTAssertTrue(a < b && b < c)
        let gotten = try await posts.get(c)
        XCTAssertEqual(gotten, Post(forum: "debian", author: "cy", text: "third 'quoted' \u{1F600}"))
        let missing = try await posts.get(c + 1000)
        XCTAssertNil(missing)
        var debian = try await posts.lookup(\Post.forum, "debian")
        XCTAssertEqual(debian.map(\.id), [c, a])
        debian = try await posts.lookup(\Post.forum, "debian", newestFirst: false)
        XCTAssertEqual(debian.map(\.id), [a, c])
        try await posts.update(a, to: Post(forum: "swift", author: "ada", text: "moved"))
        let swift = try await posts.lookup(\Post.forum, "swift")
        XCTAssertEqual(swift.map(\.id), [b, a])
        XCTAssertEqual(swift.last?.record.text, "moved")
        try await posts.delete(b)
        let count = try await posts.count()
        XCTAssertEqual(count, 2)
        let all = try await posts.all()
        XCTAssertEqual(all.map(\.id), [a, c])
        do {
            try await posts.delete(b)
            XCTFail("a deleted record was deleted again")
        } catch let error as StoreError {
            XCTAssertEqual(error, .notFound(b))
        }
        do {
            _ = try await posts.lookup(\Post.author, "ada")
            XCTFail("a lookup on a field without an index ran")
        } catch let error as PostgresError {
            XCTAssertTrue(error.message.contains("no index"), error.message)
        }
        // Opening again finds the table as made.
        let again = try await PostgresTable.open(Post.self, on: db, indexes: [byForum])
        let again2 = try await again.count()
        XCTAssertEqual(again2, 2)
    }

    func testTransactionsAreAllOrNothingAndUniqueIndexesRefuse() async throws {
        let db = try client()
        defer { db.close() }
        let members = try await PostgresTable.open(Member.self, on: db, indexes: [PostgresIndex("email", \Member.email, unique: true)])
        let ada = try await members.insert(Member(email: "ada@example.org"))
        do {
            try await db.transaction { tx in
                try await members.insert(Member(email: "bob@example.org"), in: tx)
                try await members.insert(Member(email: "ada@example.org"), in: tx)
            }
            XCTFail("a duplicate email was accepted")
        } catch let error as PostgresError {
            XCTAssertTrue(error.isUniqueViolation, "\(error)")
        }
        let bob = try await members.unique(\Member.email, "bob@example.org")
        XCTAssertNil(bob, "the first insert of the failed transaction stayed")
        let found = try await members.unique(\Member.email, "ada@example.org")
        XCTAssertEqual(found?.id, ada)
    }

    func testTwoBackendsShareTheTable() async throws {
        let one = try client()
        let two = try client()
        defer {
            one.close()
            two.close()
        }
        let index = byForum
        async let tableOne = PostgresTable.open(Post.self, on: one, indexes: [index])
        async let tableTwo = PostgresTable.open(Post.self, on: two, indexes: [index])
        let (a, b) = try await (tableOne, tableTwo)
        let id = try await a.insert(Post(forum: "shared", author: "one", text: "from the first backend"))
        let seen = try await b.get(id)
        XCTAssertEqual(seen?.text, "from the first backend")
    }

    func testMismatchedSchemasAreRefusedWithoutChanges() async throws {
        let db = try client()
        defer { db.close() }
        _ = try await PostgresTable.open(Post.self, on: db, indexes: [byForum])
        do {
            _ = try await PostgresTable.open(Post.self, on: db, indexes: [PostgresIndex("author", \Post.author)])
            XCTFail("other indexed columns were accepted")
        } catch let error as PostgresError {
            XCTAssertTrue(error.message.contains("migration"), error.message)
        }
        try await db.execute("UPDATE nt_schema SET version = 99 WHERE name = 'nt_post'")
        do {
            _ = try await PostgresTable.open(Post.self, on: db, indexes: [byForum])
            XCTFail("a newer schema version was accepted")
        } catch let error as PostgresError {
            XCTAssertTrue(error.message.contains("version 99"), error.message)
        }
        try await db.execute("UPDATE nt_schema SET version = 1 WHERE name = 'nt_post'")
        do {
            _ = try await PostgresTable.open(Post.self, on: db, indexes: [PostgresIndex("Bad Name", \Post.author)])
            XCTFail("a bad column name was accepted")
        } catch let error as PostgresError {
            XCTAssertEqual(error.kind, .client)
        }
    }

    func testAnOlderSchemaIsUpgradedStepByStepAndAMissingStepRefused() async throws {
        let db = try client()
        defer { db.close() }
        // nt_channel as the first layout made it, with a channel at version 5.
        try await db.makeSchema(
            "nt_channel", version: 1, columns: "name,version",
            create: ["CREATE TABLE nt_channel (name text PRIMARY KEY, version bigint NOT NULL)"])
        try await db.execute("INSERT INTO nt_channel (name, version) VALUES ('forum:Debian', 5)")
        do {
            try await db.makeSchema("nt_channel", version: 3, columns: "name,version,x", create: [], upgrade: [3: ["SELECT 1"]])
            XCTFail("an upgrade without its step 2 was accepted")
        } catch let error as PostgresError {
            XCTAssertTrue(error.message.contains("no way to version 2"), error.message)
        }
        let channels = Channels(ordered: true)
        let shared = try await SharedChannels.open(on: db, channels: channels) { XCTFail($0) }
        defer { shared.close() }
        XCTAssertEqual(channels.version("forum:Debian"), 5, "the versions survive the upgrade")
        let schema = try await db.query("SELECT version, columns FROM nt_schema WHERE name = 'nt_channel'")
        XCTAssertEqual(try schema.decode(0, 0, as: Int.self), SharedChannels.schemaVersion)
        XCTAssertEqual(try schema.decode(0, 1, as: String.self), "name,version,appended,rewritten")
        // Appends and other changes are counted apart, each once per write however many bodies
        // of a batch announce them.
        try await shared.write { tx in tx.notify("forum:Debian", appending: 2) }
        try await shared.write { tx in tx.notify("forum:Debian") }
        async let one: Void = shared.write { tx in tx.notify("forum:Debian", appending: 1) }
        async let two: Void = shared.write { tx in tx.notify("forum:Debian", appending: 1) }
        _ = try await (one, two)
        let row = try await db.query("SELECT version, appended, rewritten FROM nt_channel WHERE name = 'forum:Debian'")
        XCTAssertEqual(try row.decode(0, 1, as: Int.self), 4)
        XCTAssertEqual(try row.decode(0, 2, as: Int.self), 1)
        let version = try row.decode(0, 0, as: Int.self)
        XCTAssertTrue((7...8).contains(version), "one step per batch: \(version)")
        XCTAssertEqual(channels.version("forum:Debian"), UInt64(version))
    }

    func testACorruptRowIsReportedWithItsId() async throws {
        let db = try client()
        defer { db.close() }
        let posts = try await PostgresTable.open(Post.self, on: db, indexes: [byForum])
        let id = try await posts.insert(Post(forum: "x", author: "y", text: "z"))
        try await db.execute("UPDATE nt_post SET data = '\\x0102'::bytea WHERE id = $1", [id])
        do {
            _ = try await posts.get(id)
            XCTFail("a corrupt row decoded")
        } catch let error as StoreError {
            XCTAssertTrue("\(error)".contains("nt_post id \(id)"), "\(error)")
        }
    }
}
