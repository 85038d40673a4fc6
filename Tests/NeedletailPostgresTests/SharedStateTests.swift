import Foundation
import NeedletailCluster
import NeedletailHTML
import NeedletailHTTP
import NeedletailLive
import NeedletailPostgres
import NeedletailTestSupport
import NeedletailTesting
import Synchronization
import XCTest

/// Two backends (two clients, two `Channels`, two `SessionStore`s) on one real server.
final class SharedStateTests: PostgresServerTestCase {
    func testAWriteOnOneBackendWakesTheViewersOfAnotherAtTheSameVersion() async throws {
        let (a, b) = (try client("nt-a"), try client("nt-b"))
        defer {
            a.close()
            b.close()
        }
        let (onA, onB) = (Channels(ordered: true), Channels(ordered: true))
        let refreshed = Seen<String>(), errors = Seen<String>()
        let sharedA = try await SharedChannels.open(on: a, channels: onA) { errors.add("A: " + $0) }
        // B's hook sees the new version before B's viewers are woken.
        let sharedB = try await SharedChannels.open(
            on: b, channels: onB,
            beforeWake: { channel, version in
                refreshed.add("\(channel)@\(version) (B was at \(onB.version(channel)))")
            }, onError: { errors.add("B: " + $0) })
        defer {
            sharedA.close()
            sharedB.close()
        }
        let forum: Channel = "forum:Debian"
        let start = onA.version(forum)
        XCTAssertEqual(onB.version(forum), start, "both backends start at the database's version")

        let woken = Seen<UInt64>()
        onB.wait(for: [ChannelVersion(forum, start)], timeout: 30, isCancelled: { false }) { woken.add($0[0].version) }
        XCTAssertEqual(onB.waiting, 1)
        try await sharedA.write { tx in
            _ = try await tx.transaction.query("SELECT 1")
            tx.notify(forum)
        }
        XCTAssertEqual(onA.version(forum), start + 1, "the writing backend is there when write returns")
        try await woken.wait("B's viewer woken") { $0 == [start + 1] }
        XCTAssertEqual(refreshed.all.filter { $0.hasPrefix(forum.name + "@") }, ["\(forum)@\(start + 1) (B was at \(start))"])

        // A rolled-back write advances nothing anywhere.
        struct Refused: Error {}
        do {
            _ = try await sharedA.write { tx in
                tx.notify(forum)
                throw Refused()
            }
            XCTFail("the write did not throw")
        } catch is Refused {}
        XCTAssertEqual(onA.version(forum), start + 1)
        let stored = try await a.query("SELECT version FROM nt_channel WHERE name = $1", [forum.name])
        XCTAssertEqual(try stored.decode(0, 0, as: Int.self), Int(start + 1))

        // A viewer whose page came from a backend further along waits for this one to catch up
        // (no answer that would take it back), and is woken by the next version only.
        let ahead = Seen<UInt64>()
        onB.wait(for: [ChannelVersion(forum, start + 2)], timeout: 30, isCancelled: { false }) { ahead.add($0[0].version) }
        try await Task.sleep(nanoseconds: 100_000_000)
        XCTAssertEqual(ahead.all, [], "answered although nothing newer than its version exists")
        try await sharedA.write { tx in tx.notify(forum) }
        try await Task.sleep(nanoseconds: 300_000_000)
        XCTAssertEqual(onB.version(forum), start + 2)
        XCTAssertEqual(ahead.all, [], "woken by the version it already had")
        try await sharedA.write { tx in tx.notify(forum) }
        try await ahead.wait("the viewer woken at the next version") { $0 == [start + 3] }
    }

    func testConcurrentWritesShareCommitsAndOnlyTheFailingOneFails() async throws {
        let a = try client("nt-batches")
        defer { a.close() }
        let onA = Channels(ordered: true)
        let sharedA = try await SharedChannels.open(on: a, channels: onA) { _ in }
        defer { sharedA.close() }
        _ = try await a.query("CREATE TABLE IF NOT EXISTS batch_row (n int PRIMARY KEY)")
        _ = try await a.query("TRUNCATE batch_row")
        let board: Channel = "batches"
        let start = onA.version(board)
        struct Refused: Error {}
        // 60 writes at once: number 7 throws, number 9 breaks a constraint (its row is there
        // already), the others commit.
        _ = try await a.query("INSERT INTO batch_row VALUES (1009)")
        let outcomes = await withTaskGroup(of: (Int, Bool).self) { group in
            for n in 0..<60 {
                group.addTask {
                    do {
                        try await sharedA.write { tx in
                            _ = try await tx.transaction.query("INSERT INTO batch_row VALUES ($1)", [n == 9 ? 1009 : n])
                            tx.notify(board)
                            if n == 7 { throw Refused() }
                        }
                        return (n, true)
                    } catch {
                        return (n, false)
                    }
                }
            }
            var all: [Int: Bool] = [:]
            for await (n, ok) in group { all[n] = ok }
            return all
        }
        XCTAssertEqual(outcomes.filter { !$0.value }.keys.sorted(), [7, 9])
        let rows = try await a.query("SELECT n FROM batch_row WHERE n < 1000 ORDER BY n")
        XCTAssertEqual(try (0..<rows.count).map { try rows.decode($0, 0, as: Int.self) }, (0..<60).filter { $0 != 7 && $0 != 9 })
        // One advance per batch, not per write (and at least one, so viewers hear of it).
        let advanced = onA.version(board) - start
        XCTAssertGreaterThan(advanced, 0)
        XCTAssertLessThan(advanced, 20, "the 60 writes were not batched")
        let stored = try await a.query("SELECT version FROM nt_channel WHERE name = $1", [board.name])
        XCTAssertEqual(UInt64(try stored.decode(0, 0, as: Int.self)), onA.version(board))
    }

    func testABackendThatLosesItsListenerCatchesUpFromTheDatabase() async throws {
        let server = try database()
        let (a, b) = (try client("nt-writer3"), try client("nt-lossy-b"))
        defer {
            a.close()
            b.close()
        }
        let (onA, onB) = (Channels(ordered: true), Channels(ordered: true))
        let errors = Seen<String>()
        let sharedA = try await SharedChannels.open(on: a, channels: onA) { errors.add($0) }
        let sharedB = try await SharedChannels.open(on: b, channels: onB) { errors.add($0) }
        defer {
            sharedA.close()
            sharedB.close()
        }
        let board: Channel = "board"
        let woken = Seen<UInt64>()
        onB.wait(for: [ChannelVersion(board, onB.version(board))], timeout: 30, isCancelled: { false }) { woken.add($0[0].version) }
        try server.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'nt-lossy-b'")
        // Written while B may be reconnecting: heard as a notification or read back on catching up.
        try await sharedA.write { tx in tx.notify(board) }
        let version = onA.version(board)
        try await woken.wait("B's viewer woken after the loss") { $0 == [version] }
        try await errors.wait("the loss reported") { $0.contains { $0.contains("listening on nt_channels again") } }
    }

    func testUnorderedChannelsAreRefused() async throws {
        let a = try client("nt-unordered")
        defer { a.close() }
        do {
            _ = try await SharedChannels.open(on: a, channels: Channels()) { _ in }
            XCTFail("unordered channels were accepted")
        } catch let e as PostgresError {
            XCTAssertTrue(e.message.contains("ordered"), e.message)
        }
    }

    /// A page that shows the visitor's name and a value kept in its session.
    private func app(_ sessions: SessionStore) -> LiveApp {
        var app = LiveApp(core: LiveAppCore(sessions: sessions))
        app.page("/me") { page in .text("\(page.session.userName) \((page.session["colour"] as? String) ?? "-")") }
        app.router.get("/paint") { request async throws -> Response in
            guard let (session, _) = sessions.existing(for: request) else { return .text("no session") }
            try await sessions.set("colour", request.query["c"], in: session)
            return .text("ok")
        }
        return app
    }

    /// The browser's request on a thread of its own (it blocks until the app answers).
    private func get(_ browser: TestBrowser, _ target: String) async -> TestResponse {
        let box = UnsafeSendableBox(browser)
        return await withCheckedContinuation { c in
            Thread.detachNewThread { c.resume(returning: box.value.get(target)) }
        }
    }

    func testAVisitorGoesOnAtAnotherBackendWithTheSameSessionAndName() async throws {
        let (a, b) = (try client("nt-sessions-a"), try client("nt-sessions-b"))
        defer {
            a.close()
            b.close()
        }
        let storeA = SessionStore(backing: try await SharedSessions.open(on: a))
        let storeB = SessionStore(backing: try await SharedSessions.open(on: b))
        let (appA, appB) = (app(storeA), app(storeB))
        let onA = TestBrowser(appA)
        let first = await get(onA, "/me")
        XCTAssertEqual(first.status, .ok)
        let name = String(first.text.split(separator: " ")[0])
        XCTAssertTrue(name.hasPrefix("user-"), first.text)
        let cookie = try XCTUnwrap(onA.cookie("nt_session"))
        let painted = await get(onA, "/paint?c=teal")
        XCTAssertEqual(painted.text, "ok")

        // The same browser (its cookie) at backend B, which has never seen it.
        let onB = TestBrowser(appB)
        onB.defaultHeaders = [("Cookie", "nt_session=" + cookie)]
        XCTAssertEqual(storeB.count, 0)
        let there = await get(onB, "/me")
        XCTAssertEqual(there.text, name + " teal")
        XCTAssertNil(there.header("Set-Cookie"), "a new session was made instead")
        XCTAssertEqual(storeB.count, 1)

        // An id nobody made gets a new session (and a new name), saved before its cookie goes out.
        let stranger = TestBrowser(appB)
        stranger.defaultHeaders = [("Cookie", "nt_session=" + String(repeating: "0", count: 32))]
        let fresh = await get(stranger, "/me")
        XCTAssertNotNil(fresh.header("Set-Cookie"))
        XCTAssertFalse(fresh.text.hasPrefix(name))
        let saved = try await a.query("SELECT count(*) FROM nt_session WHERE user_name = $1", [String(fresh.text.split(separator: " ")[0])])
        XCTAssertEqual(try saved.decode(0, 0, as: Int.self), 1)

        // An idle session is not brought back.
        _ = try await a.execute("UPDATE nt_session SET last_used = now() - interval '2 hours' WHERE id = $1", [cookie])
        let storeC = SessionStore(backing: try await SharedSessions.open(on: b))
        let onC = TestBrowser(app(storeC))
        onC.defaultHeaders = [("Cookie", "nt_session=" + cookie)]
        let expired = await get(onC, "/me")
        XCTAssertNotNil(expired.header("Set-Cookie"))
        XCTAssertFalse(expired.text.hasPrefix(name))
    }
}

/// Hands a non-Sendable value to another thread that alone uses it from then on.
struct UnsafeSendableBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
