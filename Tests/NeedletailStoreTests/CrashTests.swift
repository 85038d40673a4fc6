import Foundation
import Glibc
import NeedletailStore
import NeedletailStoreTestSupport
import NeedletailTestSupport
import Testing

/// The store tool built next to the test bundle.
func storeTool() -> String {
    let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for candidate in [bundle, bundle.deletingLastPathComponent()] {
        let path = candidate.appendingPathComponent("needletail-store").path
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    return ".build/debug/needletail-store"
}

@Suite("Store crash safety", .serialized)
struct CrashTests {
    @Test func sigkillNeverLosesAnAcknowledgedWrite() throws {
        let path = tempLogPath("torture")
        var acknowledged = Set<Int>()
        for round in 0..<50 {
            let p = try SpawnedProcess(storeTool(), ["torture", path], capture: .stdout)
            // Let it write for a random moment, then kill it without warning.
            usleep(UInt32.random(in: 30_000...150_000))
            kill(p.pid, SIGKILL)
            p.waitForExit()
            let text = p.readOutput()
            var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            lines.removeLast()  // the part after the last newline may be cut
            for line in lines where line.hasPrefix("ack ") {
                if let n = Int(line.dropFirst(4)) { acknowledged.insert(n) }
            }
            let store = try Store(path: path, fsync: .never)
            let seqs = Set(try store.table(SampleRecord.self).all().map(\.record.key))
            let lost = acknowledged.subtracting(seqs)
            #expect(lost.isEmpty, "round \(round): \(lost.count) acknowledged writes lost (\(store.recovery))")
            store.close()
            if !lost.isEmpty { break }
        }
        #expect(acknowledged.count > 100, "the writer made progress (\(acknowledged.count) acks)")
    }

    @Test func toolChecksAndRepairs() throws {
        let (path, logical) = try logWithMessages(20)
        var bytes = fileBytes(path)
        bytes[logical / 2] ^= 0xFF
        writeFile(path, bytes)
        let check = try runTool(["check", path])
        #expect(check.status != 0)
        #expect(check.output.contains("damaged at byte"))
        let repair = try runTool(["repair", path])
        #expect(repair.status == 0)
        #expect(repair.output.contains("recovered"))
        #expect(try runTool(["check", path]).status == 0)
        let compact = try runTool(["compact", path])
        #expect(compact.output.contains("compacted"))
    }

    func runTool(_ args: [String]) throws -> (status: Int32, output: String) { try run(storeTool(), args) }
}
