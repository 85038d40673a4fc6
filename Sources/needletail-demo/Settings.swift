import Glibc
import Logging
import Needletail

/// The demo's `--settings FILE`: what a running server re-reads on SIGHUP, as lines of
///
///     # comments and blank lines are ignored
///     log-level debug
///     header Server: needletail
///     header Cache-Control: no-store
///
/// What the file names replaces the flag's value (`log-level` replaces `--log-level`; any
/// `header` line replaces all `--header`s); what it leaves out keeps the flag's.
struct DemoSettings: Equatable {
    var logLevel: Logger.Level?
    var headers: [Field]?

    struct Field: Equatable {
        let name: String
        let value: String
    }

    /// A line of the file that cannot be used, with its place.
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Reads and checks `path`; nothing of a file with one bad line is used.
    static func read(_ path: String) throws(Failure) -> DemoSettings {
        guard let file = fopen(path, "r") else { throw Failure(description: "cannot read \(path): \(String(cString: strerror(errno)))") }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&chunk, 1, chunk.count, file)
            bytes += chunk[0..<n]
            if n < chunk.count { break }
            if bytes.count > 1 << 20 { throw Failure(description: "\(path) is over 1 MiB: not a settings file") }
        }
        if ferror(file) != 0 { throw Failure(description: "cannot read \(path): \(String(cString: strerror(errno)))") }
        return try parse(String(decoding: bytes, as: UTF8.self), file: path)
    }

    static func parse(_ text: String, file: String) throws(Failure) -> DemoSettings {
        var settings = DemoSettings()
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters()
            if line.isEmpty || line.hasPrefix("#") { continue }
            let key = String(line.prefix { $0 != " " && $0 != "\t" })
            let rest = Substring(line.dropFirst(key.count)).trimmingCharacters()
            let place = "\(file):\(number + 1)"
            switch key {
            case "log-level":
                guard let level = Logger.Level(rawValue: rest) else {
                    throw Failure(description: "\(place): unknown log level \"\(rest)\" (trace, debug, info, notice, warning, error, critical)")
                }
                settings.logLevel = level
            case "header":
                let (name, value) = Serve.field(rest)
                guard rest.contains(":"), !DefaultFields([(name, value)]).fields.isEmpty else {
                    throw Failure(description: "\(place): a header is \"Name: value\" (a token, a colon, a value): \(rest)")
                }
                settings.headers = (settings.headers ?? []) + [Field(name: name, value: value)]
            default:
                throw Failure(description: "\(place): unknown setting \"\(key)\" (log-level, header)")
            }
        }
        return settings
    }
}
