import Foundation
import NeedletailTestSupport
import Testing

/// Proves the compile-time rules: each case in MustNotCompile/cases.swift must be refused by
/// swiftc with the expected message on one of its own lines, and MustNotCompile/Control.swift
/// (the legal counterparts) must compile cleanly.
@Suite struct CompileTimeCheckTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("MustNotCompile")

    /// The folder with the built .swiftmodule files: beside the running test binary.
    static func modulesDirectory() throws -> String {
        let exe = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
        while dir.path != "/" {
            let candidate = dir.appendingPathComponent("Modules/NeedletailHTML.swiftmodule")
            if FileManager.default.fileExists(atPath: candidate.path) { return dir.appendingPathComponent("Modules").path }
            dir = dir.deletingLastPathComponent()
        }
        throw CocoaError(.fileNoSuchFile)
    }

    static func typecheck(_ file: URL) throws -> (status: Int32, output: String) {
        try run("/usr/bin/env", ["swiftc", "-typecheck", "-I", try modulesDirectory(), file.path])
    }

    struct Case {
        var name: String
        var expect: String
        var lines: ClosedRange<Int>
    }

    static func cases() throws -> [Case] {
        let text = try String(contentsOf: directory.appendingPathComponent("cases.swift"), encoding: .utf8)
        var result: [Case] = []
        var current: Case?
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let n = i + 1
            if line.hasPrefix("// case: ") {
                if let c = current { result.append(c) }
                current = Case(name: String(line.dropFirst(9)), expect: "", lines: n...n)
            } else if line.hasPrefix("// expect: ") {
                current?.expect = String(line.dropFirst(11))
            } else if current != nil, !line.isEmpty {
                current!.lines = current!.lines.lowerBound...n
            }
        }
        if let c = current { result.append(c) }
        return result
    }

    @Test func controlFileCompiles() throws {
        let r = try Self.typecheck(Self.directory.appendingPathComponent("Control.swift"))
        #expect(r.status == 0, "\(r.output)")
    }

    /// The 200-line page of the compile-time benchmark stays valid.
    @Test func benchmarkPageCompiles() throws {
        let page = Self.directory.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Benchmarks/typecheck/Page200.swift")
        let r = try Self.typecheck(page)
        #expect(r.status == 0, "\(r.output)")
    }

    @Test func everyCaseIsRefusedWithItsMessage() throws {
        let cases = try Self.cases()
        #expect(cases.count >= 30)
        let r = try Self.typecheck(Self.directory.appendingPathComponent("cases.swift"))
        #expect(r.status != 0)
        // "cases.swift:LINE:COL: error: MESSAGE"
        var errors: [(line: Int, message: String)] = []
        for line in r.output.split(separator: "\n") where line.contains("cases.swift:") && line.contains(": error: ") {
            let afterName = line.split(separator: "cases.swift:", maxSplits: 1)[1]
            guard let n = Int(afterName.prefix(while: { $0.isNumber })) else { continue }
            errors.append((n, String(line)))
        }
        for c in cases {
            #expect(!c.expect.isEmpty, "case '\(c.name)' has no expect line")
            let hit = errors.contains { c.lines.contains($0.line) && $0.message.contains(c.expect) }
            #expect(hit, "case '\(c.name)' (lines \(c.lines)) was not refused with '\(c.expect)'")
        }
        // No error outside a case (the prelude itself must be fine).
        let stray = errors.filter { e in !cases.contains { $0.lines.contains(e.line) } }
        #expect(stray.isEmpty, "\(stray)")
    }
}

@Suite struct GeneratedCodeTests {
    /// The element, attribute and CSS property code is reproducible from the tables in Spec/.
    @Test func generatedSwiftMatchesTheTables() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let p = try run("env", ["python3", root.appendingPathComponent("scripts/generate-html").path, "--check"])
        #expect(p.status == 0, "\(p.output)")
    }
}
