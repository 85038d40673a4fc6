import Foundation
import Glibc
import Needletail
import NeedletailPostgres
import NeedletailTestSupport
import XCTest

/// The client against a real PostgreSQL server (one per test class, made with initdb into a
/// temporary folder).
final class PostgresClientTests: PostgresServerTestCase {
    func testTypedParametersRoundTrip() async throws {
        let db = try client()
        defer { db.close() }
        let text = "O'Brien; DROP TABLE users -- \u{1F600} \\ $1"
        let bytes = (0...255).map { UInt8($0) }
        let none: String? = nil
        let rows = try await db.query(
            "SELECT $1::int8, $2::text, $3::bool, $4::float8, $5::bytea, $6::text, $7::int4",
            [Int.min, text, true, 0.1, bytes, none, Int32(-7)])
        XCTAssertEqual(rows.count, 1)
        XCTAssertEqual(try rows.decode(0, 0, as: Int.self), Int.min)
        XCTAssertEqual(try rows.decode(0, 1, as: String.self), text)
        XCTAssertEqual(try rows.decode(0, 2, as: Bool.self), true)
        XCTAssertEqual(try rows.decode(0, 3, as: Double.self), 0.1)
        XCTAssertEqual(try rows.decode(0, 4, as: [UInt8].self), bytes)
        XCTAssertNil(try rows.decodeIfPresent(0, 5, as: String.self))
        XCTAssertEqual(try rows.decode(0, 6, as: Int32.self), -7)
        XCTAssertThrowsError(try rows.decode(0, 5, as: String.self))
        XCTAssertThrowsError(try rows.decode(0, 1, as: Int.self))
    }

    func testNULInTextIsRefusedNotTruncated() async throws {
        let db = try client()
        defer { db.close() }
        do {
            _ = try await db.query("SELECT $1::text", ["a\u{0}b"])
            XCTFail("a NUL in text was accepted")
        } catch {
            XCTAssertEqual(error.kind, .client)
            XCTAssertTrue(error.message.contains("$1"), error.message)
        }
        // The connection is still good.
        let one = try await db.query("SELECT 1").decode(0, 0, as: Int.self)
        XCTAssertEqual(one, 1)
    }

    func testConcurrentQueriesShareOnePipelinedConnection() async throws {
        let db = try client {
            $0.connectionsPerLoop = 1
            $0.applicationName = "nt-pipeline"
        }
        defer { db.close() }
        let sums = try await withThrowingTaskGroup(of: (Int, Int).self) { group in
            for i in 0..<300 {
                group.addTask { (i, try await db.query("SELECT $1::int8 * 2", [i]).decode(0, 0, as: Int.self)) }
            }
            var all: [(Int, Int)] = []
            for try await r in group { all.append(r) }
            return all
        }
        XCTAssertEqual(sums.count, 300)
        for (i, doubled) in sums { XCTAssertEqual(doubled, i * 2) }
        let sessions = try await db.query("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'nt-pipeline'")
        XCTAssertEqual(try sessions.decode(0, 0, as: Int.self), 1)
    }

    func testStatementsArePreparedOnceAndReused() async throws {
        let db = try client { $0.connectionsPerLoop = 1 }
        defer { db.close() }
        for i in 0..<5 { _ = try await db.query("SELECT $1::int8 + 40", [i]) }
        let prepared = try await db.query(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement = $1", ["SELECT $1::int8 + 40"])
        XCTAssertEqual(try prepared.decode(0, 0, as: Int.self), 1)
        // A statement that failed to prepare is prepared again next time; one whose run
        // failed stays prepared under its name.
        try await db.execute("DROP TABLE IF EXISTS made_later")
        do {
            _ = try await db.query("SELECT n FROM made_later WHERE n > $1", [0])
            XCTFail("a missing table was found")
        } catch {
            XCTAssertEqual(error.sqlState, "42P01")
        }
        try await db.execute("CREATE TABLE made_later (n int8 NOT NULL)")
        try await db.execute("INSERT INTO made_later VALUES (1), (2)")
        let found = try await db.query("SELECT n FROM made_later WHERE n > $1", [0])
        XCTAssertEqual(found.count, 2)
        for _ in 0..<2 {
            do {
                _ = try await db.query("SELECT 1 / $1::int8", [0])
                XCTFail("a division by zero succeeded")
            } catch {
                XCTAssertEqual(error.sqlState, "22012")
            }
        }
        let quotient = try await db.query("SELECT 1 / $1::int8", [1]).decode(0, 0, as: Int.self)
        XCTAssertEqual(quotient, 1)
    }

    func testServerErrorsCarrySQLStateAndTheConnectionGoesOn() async throws {
        let db = try client { $0.connectionsPerLoop = 1 }
        defer { db.close() }
        try await db.execute("CREATE TABLE IF NOT EXISTS unique_names (name text PRIMARY KEY)")
        try await db.execute("INSERT INTO unique_names VALUES ($1)", ["ada"])
        do {
            try await db.execute("INSERT INTO unique_names VALUES ($1)", ["ada"])
            XCTFail("a duplicate key was accepted")
        } catch {
            XCTAssertEqual(error.kind, .server)
            XCTAssertEqual(error.sqlState, "23505")
            XCTAssertTrue(error.isUniqueViolation)
            XCTAssertEqual(error.detail, "Key (name)=(ada) already exists.")
        }
        do {
            _ = try await db.query("SELEC 1")
            XCTFail("a syntax error was accepted")
        } catch {
            XCTAssertEqual(error.sqlState, "42601")
            XCTAssertTrue(String(describing: error).contains("syntax error"), "\(error)")
        }
        let deleted = try await db.execute("DELETE FROM unique_names WHERE name = $1", ["ada"])
        XCTAssertEqual(deleted, 1)
    }

    func testStatementTimeoutEndsALongQuery() async throws {
        let db = try client { $0.statementTimeoutMilliseconds = 200 }
        defer { db.close() }
        do {
            _ = try await db.query("SELECT pg_sleep(20)")
            XCTFail("the statement timeout did not end the query")
        } catch {
            XCTAssertTrue(error.isStatementTimeout, "\(error)")
        }
        let after = try await db.query("SELECT 'after'").decode(0, 0, as: String.self)
        XCTAssertEqual(after, "after")
    }

    struct Refused: Error {}

    func testTransactionsCommitOrRollBack() async throws {
        let db = try client()
        defer { db.close() }
        try await db.execute("CREATE TABLE IF NOT EXISTS ledger (id bigserial PRIMARY KEY, note text NOT NULL)")
        try await db.execute("TRUNCATE ledger")
        let id = try await db.transaction { tx in
            let rows = try await tx.query("INSERT INTO ledger (note) VALUES ($1) RETURNING id", ["kept"])
            return try rows.decode(0, 0, as: Int.self)
        }
        do {
            try await db.transaction { tx in
                try await tx.execute("INSERT INTO ledger (note) VALUES ($1)", ["thrown away"])
                throw Refused()
            }
            XCTFail("the body's error was not rethrown")
        } catch is Refused {}
        do {
            try await db.transaction { tx in
                try await tx.execute("INSERT INTO ledger (note) VALUES ($1)", ["also thrown away"])
                try await tx.execute("INSERT INTO ledger (id, note) VALUES ($1, 'dup')", [id])
            }
            XCTFail("a failed statement did not fail the transaction")
        } catch let error as PostgresError {
            XCTAssertEqual(error.sqlState, "23505")
        }
        let notes = try await db.query("SELECT note FROM ledger ORDER BY id")
        XCTAssertEqual(notes.count, 1)
        XCTAssertEqual(try notes.decode(0, 0, as: String.self), "kept")
    }

    func testReconnectsAfterTheServerEndsTheSession() async throws {
        let server = try database()
        let db = try client { $0.connectionsPerLoop = 1 }
        defer { db.close() }
        let first = try await db.query("SELECT pg_backend_pid()").decode(0, 0, as: Int.self)
        try server.psql("SELECT pg_terminate_backend(\(first))")
        var answered: Int?
        var failures: [PostgresError] = []
        for _ in 0..<50 where answered == nil {
            do {
                answered = try await db.query("SELECT pg_backend_pid()").decode(0, 0, as: Int.self)
            } catch {
                failures.append(error)
                try await Task.sleep(nanoseconds: 50_000_000)
            }
        }
        XCTAssertNotNil(answered, "no answer after the session ended: \(failures)")
        XCTAssertNotEqual(answered, first)
        for f in failures { XCTAssertTrue([.connectionLost, .server, .unavailable].contains(f.kind), "\(f)") }
    }

    func testUnreachableServerFailsFastWithBackoff() async throws {
        let db = try PostgresClient(PostgresConfiguration("postgres://postgres@127.0.0.1:\(freePort())/postgres"))
        defer { db.close() }
        do {
            _ = try await db.query("SELECT 1")
            XCTFail("a query without a server succeeded")
        } catch {
            XCTAssertEqual(error.kind, .unavailable)
            XCTAssertTrue(error.message.contains("127.0.0.1"), error.message)
        }
        do {
            _ = try await db.query("SELECT 1")
            XCTFail("a query without a server succeeded")
        } catch {
            XCTAssertEqual(error.kind, .unavailable)
            XCTAssertTrue(error.message.contains("next attempt in"), error.message)
        }
    }

    func testBadConnectionStringIsRefusedAtOnceAndPasswordsAreHidden() throws {
        XCTAssertThrowsError(try PostgresClient(PostgresConfiguration("host=x port"))) { error in
            XCTAssertEqual((error as? PostgresError)?.kind, .client)
        }
        XCTAssertEqual(PostgresConfiguration("postgres://app:s3cret@db:5432/app").redacted, "postgres://app:…@db:5432/app")
        XCTAssertEqual(PostgresConfiguration("host=db password=s3cret user=app").redacted, "host=db password=… user=app")
        XCTAssertEqual(PostgresConfiguration("host=db password='a b' user=app").redacted, "host=db password=… user=app")
        XCTAssertEqual(PostgresConfiguration("postgres://app@db/app").redacted, "postgres://app@db/app")
    }

    /// sslmode as libpq has it: `require` refused by a server without TLS; over TLS, big
    /// answers (many TLS records each) to many pipelined queries all arrive whole.
    func testSSLModeIsHonouredAndTLSAnswersArriveWhole() async throws {
        let plain = try PostgresClient(PostgresConfiguration(try database().url + "?sslmode=require"))
        defer { plain.close() }
        do {
            _ = try await plain.query("SELECT 1")
            XCTFail("sslmode=require connected to a server without TLS")
        } catch {
            XCTAssertEqual(error.kind, .unavailable)
            XCTAssertTrue(error.message.contains("SSL"), error.message)
        }
        let server = try PostgresServer(tls: true)
        defer { server.stop() }
        var configuration = PostgresConfiguration(server.url + "?sslmode=require")
        configuration.connectionsPerLoop = 2
        let db = try PostgresClient(configuration)
        defer { db.close() }
        let inUse = try await db.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        XCTAssertEqual(try inUse.decode(0, 0, as: Bool.self), true)
        let lengths = try await withThrowingTaskGroup(of: Int.self) { group in
            for i in 0..<40 {
                group.addTask { try await db.query("SELECT repeat('x', $1::int4)", [Int32(50_000 + i)]).decode(0, 0, as: String.self).utf8.count }
            }
            var all: [Int] = []
            for try await n in group { all.append(n) }
            return all.sorted()
        }
        XCTAssertEqual(lengths, (0..<40).map { 50_000 + $0 })
    }

    func testClosedClientRefusesQueries() async throws {
        let db = try client()
        _ = try await db.query("SELECT 1")
        db.close()
        do {
            _ = try await db.query("SELECT 1")
            XCTFail("a closed client answered")
        } catch {
            XCTAssertEqual(error.kind, .client)
        }
    }

    /// A handler awaiting a slow query leaves its loop free: a second request on the same
    /// (single) loop is answered while the first still waits.
    func testTheLoopServesOthersWhileAQueryWaits() throws {
        let db = try client()
        defer { db.close() }
        var router = Router()
        router.get("/hello") { _ in .text("hello") }
        router.get("/slow") { _ async throws -> Response in
            let rows = try await db.query("SELECT 'slept' FROM pg_sleep(1)")
            return .text(try rows.decode(0, 0, as: String.self))
        }
        try withServer(loops: 1, responder: router) { _, address in
            let slow = try TestClient(address, timeout: 10)
            try slow.send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
            usleep(100_000)
            let quick = try TestClient(address, timeout: 10)
            try quick.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
            XCTAssertEqual(try quick.readResponse().text, "hello")
            var poll = pollfd(fd: slow.fd, events: Int16(POLLIN), revents: 0)
            XCTAssertEqual(Glibc.poll(&poll, 1, 0), 0, "the slow answer came before the quick one")
            let answer = try slow.readResponse()
            XCTAssertEqual(answer.status, 200)
            XCTAssertEqual(answer.text, "slept")
        }
    }
}
