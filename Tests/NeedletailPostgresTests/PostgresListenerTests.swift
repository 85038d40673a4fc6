import Foundation
import NeedletailPostgres
import NeedletailTestSupport
import Synchronization
import XCTest

/// LISTEN/NOTIFY between two clients (two backends), against a real server.
final class PostgresListenerTests: PostgresServerTestCase {
    func testNotificationsArriveOnlyWhenTheirTransactionCommits() async throws {
        let listening = try client("nt-listener")
        let writing = try client("nt-writer")
        defer {
            listening.close()
            writing.close()
        }
        let heard = Seen<PostgresListenerEvent>()
        let listener = try listening.listen(["board", "Mixed Case"]) { heard.add($0) }
        defer { listener.close() }
        try await heard.wait("listening") { $0 == [.listening(afterLoss: false)] }
        try await writing.notify("board", "42")
        try await writing.notify("Mixed Case", "")
        try await writing.notify("elsewhere", "not for us")
        struct Refused: Error {}
        do {
            try await writing.transaction { tx in
                try await tx.notify("board", "rolled back")
                throw Refused()
            }
        } catch is Refused {}
        try await writing.transaction { tx in
            try await tx.notify("board", "committed")
            try await tx.execute("SELECT pg_sleep(0.2)")
        }
        try await heard.wait("the committed notification") { $0.contains(.notification(channel: "board", payload: "committed")) }
        XCTAssertEqual(
            heard.all,
            [
                .listening(afterLoss: false), .notification(channel: "board", payload: "42"),
                .notification(channel: "Mixed Case", payload: ""), .notification(channel: "board", payload: "committed"),
            ])
        do {
            try await writing.notify("board", String(repeating: "x", count: 8000))
            XCTFail("an 8,000-byte payload was sent")
        } catch {
            XCTAssertEqual(error.kind, .client)
        }
    }

    func testAListenerThatLosesItsConnectionListensAgainAndSaysSo() async throws {
        let server = try database()
        let listening = try client("nt-lossy")
        let writing = try client("nt-writer2")
        defer {
            listening.close()
            writing.close()
        }
        let heard = Seen<PostgresListenerEvent>()
        let listener = try listening.listen(["board"]) { heard.add($0) }
        defer { listener.close() }
        try await heard.wait("listening") { $0.contains(.listening(afterLoss: false)) }
        try server.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'nt-lossy'")
        try await heard.wait("listening after the loss") { $0.contains(.listening(afterLoss: true)) }
        try await writing.notify("board", "after")
        try await heard.wait("the notification after the loss") { $0.last == .notification(channel: "board", payload: "after") }
    }

    func testBadChannelNamesAreRefused() throws {
        let c = try client("nt-bad")
        defer { c.close() }
        XCTAssertThrowsError(try c.listen([]) { _ in })
        XCTAssertThrowsError(try c.listen([String(repeating: "c", count: 64)]) { _ in })
    }
}
