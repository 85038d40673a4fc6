import NeedletailPostgres
import NeedletailTestSupport
import Synchronization
import XCTest

/// A test class with a real PostgreSQL server of its own (initdb into a temporary folder),
/// made when the class starts and stopped when it ends.
class PostgresServerTestCase: XCTestCase {
    nonisolated(unsafe) static var server: PostgresServer?

    override class func setUp() {
        super.setUp()
        server = try? PostgresServer()
    }

    override class func tearDown() {
        server?.stop()
        server = nil
        super.tearDown()
    }

    /// The class's server; made again here when it failed at the class's start, to say why.
    func database() throws -> PostgresServer {
        if let s = Self.server { return s }
        let made = try PostgresServer()
        Self.server = made
        return made
    }

    /// A client of the server, with `application_name` `name` if given and `change` applied.
    func client(_ name: String? = nil, _ change: (inout PostgresConfiguration) -> Void = { _ in }) throws -> PostgresClient {
        var configuration = PostgresConfiguration(try database().url)
        if let name { configuration.applicationName = name }
        change(&configuration)
        return try PostgresClient(configuration)
    }
}

/// What a listener, subscriber or hook saw, for a test to wait on.
final class Seen<T: Sendable>: Sendable {
    private let items = Mutex<[T]>([])
    func add(_ item: T) { items.withLock { $0.append(item) } }
    var all: [T] { items.withLock { $0 } }

    /// Waits up to 10 s until `predicate` holds.
    func wait(_ what: String, _ predicate: ([T]) -> Bool) async throws {
        let end = monotonicSeconds() + 10
        while !predicate(all) {
            if monotonicSeconds() > end { throw TestClient.Failure(description: "never saw \(what): \(all)") }
            try await Task.sleep(nanoseconds: 10_000_000)
        }
    }
}
