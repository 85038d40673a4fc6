import Glibc
import NeedletailBytes
import NeedletailCompression
import NeedletailPOSIX
import Synchronization

/// Files from a public folder: sendfile(2) natively, ETag and Last-Modified with conditional
/// requests (304), single byte ranges (206, 416), MIME types by extension, and no way out of
/// the folder (no `..`, no hidden files, no symlink leading elsewhere).
///
/// Compressed answers, as nginx's `gzip_static`: a file's `.br` or `.gz` sibling, when there is
/// one and the client accepts it, is sent instead (by sendfile, with its own ETag and ranges of
/// its own bytes). A compressible file without a sibling, up to `compressInMemoryUpTo` bytes, is
/// gzipped once on a worker thread the first time it is asked for (that answer goes out
/// uncompressed) and served from memory after, until the file changes.
public struct StaticFiles: Sendable {
    /// The folder, resolved (no symlinks).
    public let root: String
    /// The URL prefix they are served under, e.g. `/static/`.
    public let prefix: String
    /// `Cache-Control: public, max-age=` this many seconds.
    public let maxAge: Int
    /// Files up to this size without a `.gz` sibling are gzipped in memory (0: never).
    public let compressInMemoryUpTo: Int
    let cache: CompressedFiles

    /// Nil when `root` is not a directory.
    public init?(root: String, prefix: String = "/static/", maxAge: Int = 3600, compressInMemoryUpTo: Int = 1 << 20) {
        guard let resolved = realpath(root, nil) else { return nil }
        defer { free(resolved) }
        var st = stat()
        guard stat(resolved, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else { return nil }
        self.root = String(cString: resolved)
        self.prefix = prefix.hasSuffix("/") ? prefix : prefix + "/"
        self.maxAge = maxAge
        self.compressInMemoryUpTo = compressInMemoryUpTo
        cache = CompressedFiles(limit: 64 << 20)
    }

    /// The answer for `request` if its path is under `prefix`, else nil.
    public func respond(to request: Request) -> Response? {
        let path = request.path
        guard path.hasPrefix(prefix) else { return nil }
        guard request.method == .get || request.method == .head else {
            var r = Router.errorPage(.methodNotAllowed, detail: "Files are only read here.")
            r.addHeader("Allow", "GET, HEAD")
            return r
        }
        let relative = path.dropFirst(prefix.count)
        let segments = relative.split(separator: "/", omittingEmptySubsequences: false)
        guard !relative.isEmpty, !segments.contains(where: { $0.isEmpty || $0.hasPrefix(".") || $0.contains("\0") || $0.contains("\\") })
        else {
            return Self.notFound()
        }
        guard let (full, file, st) = open(root + "/" + relative) else { return Self.notFound() }
        let type = MIMEType.forPath(full)
        guard AcceptedCodings.isCompressible(contentType: type) else {
            return answer(request, file: file, st: st, type: type, coding: nil, vary: false)
        }
        let accepted = request.headers.firstValue("accept-encoding") { AcceptedCodings(acceptEncoding: $0) } ?? .none
        if accepted.brotli, let (_, br, brst) = open(full + ".br") {
            return answer(request, file: br, st: brst, type: type, coding: "br", vary: true)
        }
        if accepted.gzip, let (_, gz, gzst) = open(full + ".gz") {
            return answer(request, file: gz, st: gzst, type: type, coding: "gzip", vary: true)
        }
        let size = Int(st.st_size)
        if accepted.gzip, size >= 256, size <= compressInMemoryUpTo {
            let mtime = Int(st.st_mtim.tv_sec), nanos = Int(st.st_mtim.tv_nsec)
            if let gz = cache.lookup(full, size: size, mtime: mtime, nanos: nanos) {
                return answer(request, memory: gz, size: size, mtime: mtime, type: type)
            }
            cache.compressSoon(full, file: file, size: size, mtime: mtime, nanos: nanos)
        }
        return answer(request, file: file, st: st, type: type, coding: nil, vary: true)
    }

    /// The file at `path` if it is a regular file inside the folder (a symlink may point anywhere).
    private func open(_ path: String) -> (String, OpenFile, stat)? {
        guard let real = realpath(path, nil) else { return nil }
        let full = String(cString: real)
        free(real)
        guard full.hasPrefix(root + "/"), let file = OpenFile(path: full) else { return nil }
        var st = stat()
        guard fstat(file.fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        return (full, file, st)
    }

    private func headers(etag: String, mtime: Int, coding: String?, vary: Bool) -> [(name: String, value: String)] {
        var headers: [(name: String, value: String)] = [
            ("ETag", etag), ("Last-Modified", HTTPDate.format(mtime)), ("Cache-Control", "public, max-age=\(maxAge)"),
            ("Accept-Ranges", "bytes"), ("X-Content-Type-Options", "nosniff"),
        ]
        if let coding { headers.append(("Content-Encoding", coding)) }
        if vary { headers.append(("Vary", "Accept-Encoding")) }
        return headers
    }

    /// A file (or a compressed sibling, `coding`), whole or the range asked for.
    private func answer(_ request: Request, file: OpenFile, st: stat, type: String, coding: String?, vary: Bool) -> Response {
        let size = Int(st.st_size)
        let mtime = Int(st.st_mtim.tv_sec)
        let etag = "\"" + String(mtime, radix: 16) + "-" + String(size, radix: 16) + (coding.map { "-" + $0 } ?? "") + "\""
        return ranged(request, etag: etag, mtime: mtime, size: size, type: type, headers: headers(etag: etag, mtime: mtime, coding: coding, vary: vary)) {
            .file(FileRegion(file: file, offset: $0.lowerBound, count: $0.count))
        }
    }

    /// A file's gzip made in memory (`size`, `mtime`: the file's own).
    private func answer(_ request: Request, memory gz: SharedBytes, size: Int, mtime: Int, type: String) -> Response {
        let etag = "\"" + String(mtime, radix: 16) + "-" + String(size, radix: 16) + "-gzip\""
        return ranged(request, etag: etag, mtime: mtime, size: gz.count, type: type, headers: headers(etag: etag, mtime: mtime, coding: "gzip", vary: true)) { range in
            var chunks = Chunks()
            if range.count == gz.count {
                chunks.append(shared: gz)
            } else {
                chunks.append(copying: UnsafeRawBufferPointer(rebasing: gz.bytes[range]))
            }
            return .chunks(chunks)
        }
    }

    /// 304, 416, 206 or 200 for a representation of `size` bytes; `body` makes the bytes of a range.
    private func ranged(
        _ request: Request, etag: String, mtime: Int, size: Int, type: String, headers: [(name: String, value: String)],
        body: (Range<Int>) -> Response.Body
    ) -> Response {
        var headers = headers
        if Self.notModified(request, etag: etag, mtime: mtime) {
            return Response(status: .notModified, headers: headers)
        }
        var range = 0..<size
        var status = HTTPStatus.ok
        if let spec = request.headers["range"], Self.ifRangeAllows(request, etag: etag) {
            switch Self.parseRange(spec, size: size) {
            case .whole: break
            case .part(let r):
                range = r
                status = .partialContent
                headers.append(("Content-Range", "bytes \(r.lowerBound)-\(r.upperBound - 1)/\(size)"))
            case .unsatisfiable:
                headers.append(("Content-Range", "bytes */\(size)"))
                var r = Router.errorPage(.rangeNotSatisfiable, detail: "The range is outside the file.")
                r.headers += headers
                return r
            }
        }
        return Response(status: status, contentType: type, headers: headers, body: body(range))
    }

    static func notFound() -> Response { Router.errorPage(.notFound, detail: "No file at this address.") }

    static func notModified(_ request: Request, etag: String, mtime: Int) -> Bool {
        if let inm = request.headers.combined("if-none-match") {
            return inm.split(separator: ",").contains { tag in
                let t = tag.drop(while: { $0 == " " })
                return t == "*" || t == etag || t == "W/" + etag
            }
        }
        if let ims = request.headers["if-modified-since"], let since = HTTPDate.parse(ims) {
            return mtime <= since
        }
        return false
    }

    static func ifRangeAllows(_ request: Request, etag: String) -> Bool {
        guard let ifRange = request.headers["if-range"] else { return true }
        return ifRange == etag
    }

    enum RangeAnswer: Equatable {
        case whole
        case part(Range<Int>)
        case unsatisfiable
    }

    /// One `bytes=` range (`a-b`, `a-`, `-n`). Several ranges, or a syntax error, give the whole
    /// file (RFC 9110 lets a server ignore Range).
    static func parseRange(_ spec: String, size: Int) -> RangeAnswer {
        guard spec.hasPrefix("bytes="), !spec.contains(",") else { return .whole }
        let r = spec.dropFirst(6).trimmingSpaces
        guard let dash = r.firstIndex(of: "-") else { return .whole }
        let a = r[..<dash], b = r[r.index(after: dash)...]
        if a.isEmpty {
            guard let n = Int(b), n > 0 else { return n0(b) }
            return size == 0 ? .unsatisfiable : .part(max(0, size - n)..<size)
        }
        guard let start = Int(a), start >= 0 else { return .whole }
        if start >= size { return .unsatisfiable }
        if b.isEmpty { return .part(start..<size) }
        guard let end = Int(b), end >= start else { return .whole }
        return .part(start..<min(end + 1, size))
    }

    private static func n0(_ b: Substring) -> RangeAnswer { Int(b) == 0 ? .unsatisfiable : .whole }
}

extension Substring {
    var trimmingSpaces: Substring { drop(while: { $0 == " " }) }
}

/// Gzipped copies of public files, made on a worker thread and kept in memory, bounded in
/// total (the least recently made go first); an entry is used only while the file's size and
/// modification time are those it was made from.
final class CompressedFiles: Sendable {
    struct Entry {
        let size: Int, mtime: Int, nanos: Int
        let gzip: SharedBytes?  // nil while being made
        let order: Int
    }
    private struct State {
        var entries: [String: Entry] = [:]
        var bytes = 0
        var made = 0
    }
    private let state = Mutex(State())
    let limit: Int

    init(limit: Int) { self.limit = limit }

    func lookup(_ path: String, size: Int, mtime: Int, nanos: Int) -> SharedBytes? {
        state.withLock { s in
            guard let e = s.entries[path], e.size == size, e.mtime == mtime, e.nanos == nanos else { return nil }
            return e.gzip
        }
    }

    /// Gzips the file on a worker thread unless that is under way already for this version.
    func compressSoon(_ path: String, file: OpenFile, size: Int, mtime: Int, nanos: Int) {
        let start = state.withLock { s -> Bool in
            if let e = s.entries[path], e.size == size, e.mtime == mtime, e.nanos == nanos { return false }
            if let old = s.entries[path] { s.bytes -= old.gzip?.count ?? 0 }
            s.made += 1
            s.entries[path] = Entry(size: size, mtime: mtime, nanos: nanos, gzip: nil, order: s.made)
            return true
        }
        guard start else { return }
        BlockingPool.shared.submit { [self] in
            let region = FileRegion(file: file, offset: 0, count: size)
            let compressed = region.read().map { chunks in
                chunks.bytes.withUnsafeBytes { Gzip.compress($0, level: 9) }.withUnsafeBytes { SharedBytes(copying: $0) }
            }
            state.withLock { s in
                guard let e = s.entries[path], e.size == size, e.mtime == mtime, e.nanos == nanos else { return }
                // Unreadable or incompressible: kept without bytes, so that this version is not tried again.
                guard let compressed, compressed.count < size else { return }
                s.entries[path] = Entry(size: size, mtime: mtime, nanos: nanos, gzip: compressed, order: e.order)
                s.bytes += compressed.count
                while s.bytes > limit, let oldest = s.entries.filter({ $0.value.gzip != nil }).min(by: { $0.value.order < $1.value.order }) {
                    s.bytes -= oldest.value.gzip?.count ?? 0
                    s.entries[oldest.key] = nil
                }
            }
        }
    }
}
